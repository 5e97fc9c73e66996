#!/usr/bin/env bash
# Build the CPU images (docker/Dockerfile: hamilton, dask, dagster) with podman and smoke-test
# them as the images' user: in `hamilton`, `coin-engine brain migrate` must fail without
# NUMBA_CACHE_DIR (issue 13, the condition reproduced) and succeed with the image's own settings;
# in `dask`, a worker runs a numba kernel of the project; `dagster` has the UI. Not part of
# `make test` (minutes: a cold build downloads the whole stack; needs root and PyPI).
#
#   sudo bash scripts/image_smoke.sh     # TARGETS="hamilton" to build fewer; KEEP=1 keeps images
#
# No Docker daemon and no image registry are needed: the python:3.11-slim base is replaced by a
# Debian bookworm root filesystem made with debootstrap (Debian's Python 3.11). podman runs as
# root with runc and lowered ulimits (crun fails on these machines: setrlimit RLIMIT_NOFILE).
# Needs: apt-get install -y podman runc debootstrap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/var/tmp/coin-engine-image-smoke}"
BASE="localhost/coin-engine/python-base:bookworm"
IMAGE="localhost/coin-engine/hamilton:smoke"  # the targets are tagged localhost/coin-engine/TARGET:smoke
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y podman runc debootstrap" >&2; exit 2; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (podman with runc as root is what works here)" >&2; exit 2; }

if ! "${PODMAN[@]}" image exists "$BASE"; then
  rootfs="$WORK/rootfs"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian
  # python:3.11-slim's pip installs system-wide; Debian marks its Python externally managed
  # (PEP 668). Lift that in this throwaway base only, and name pip as the slim image does.
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
  # PyPI may be reached through a TLS-inspecting proxy whose CA only the host's bundle holds
  # (Debian's pip reads the system bundle); a smoke-test base only, never a release image.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | "${PODMAN[@]}" import - "$BASE"
  rm -rf "$rootfs"
fi

# --network host: the RUN steps reach PyPI through the host's network
build() {
  "${PODMAN[@]}" build "${LIMITS[@]}" --network host \
    --file "$ROOT/docker/Dockerfile" --ignorefile "$ROOT/docker/Dockerfile.dockerignore" \
    --target "$1" --build-arg "PYTHON_IMAGE=$BASE" --tag "localhost/coin-engine/$1:smoke" "$ROOT"
}
for target in ${TARGETS:-hamilton dask dagster}; do build "$target"; done

run() { "${PODMAN[@]}" run --rm "${LIMITS[@]}" --network none "$@"; }
dsn="ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN=sqlite:////app/data/brain.db"

echo "== without NUMBA_CACHE_DIR (an empty value is unset for numba): must fail as in issue 13"
if out=$(run -e "$dsn" -e NUMBA_CACHE_DIR= "$IMAGE" coin-engine brain migrate 2>&1); then
  echo "FAIL: migrate succeeded without a numba cache" >&2; exit 1
fi
grep -q "no locator available" <<<"$out" || { echo "FAIL: unexpected error: $out" >&2; exit 1; }
echo "ok: $(grep -m1 'RuntimeError: cannot cache' <<<"$out")"

echo "== with the image's settings"
run -e "$dsn" "$IMAGE" sh -c 'id && coin-engine brain migrate'
echo "ok: brain migrate as the image's user"

echo "== the hamilton image holds the installed package only: no sources in /app, no Dagster UI"
run "$IMAGE" python3 -c '
import importlib.util, os, trading_core
assert importlib.util.find_spec("dagster_webserver") is None, "dagster-webserver installed"
assert sorted(os.listdir("/app")) == ["config", "data"], os.listdir("/app")
print("ok:", trading_core.__file__)'

if [[ " ${TARGETS:-hamilton dask dagster} " == *" dask "* ]]; then
  echo "== dask image: a Dask worker (as the image's user) runs a numba kernel of the project"
  run localhost/coin-engine/dask:smoke python3 -c '
from distributed import Client, LocalCluster

def task():
    import numpy as np
    from trading_core.features import rolling
    out = np.empty(6)
    rolling.rolling_mean(np.arange(6.0), 2, 0, out)
    return out[1:].tolist()

if __name__ == "__main__":
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            result = client.submit(task).result(timeout=300)
    assert result == [0.5, 1.5, 2.5, 3.5, 4.5], result
    print("ok: worker computed", result)'
fi

if [[ " ${TARGETS:-hamilton dask dagster} " == *" dagster "* ]]; then
  echo "== dagster image: the UI is installed here"
  run localhost/coin-engine/dagster:smoke dagster-webserver --version
fi

if [[ "${KEEP:-0}" != 1 ]]; then
  for target in ${TARGETS:-hamilton dask dagster}; do
    "${PODMAN[@]}" rmi "localhost/coin-engine/$target:smoke" >/dev/null
  done
fi
