#!/usr/bin/env bash
# Debian packages the tests drive for real. Idempotent and non-interactive; installs only what
# is missing. Needs root or sudo on a fresh machine; without either it says so and exits 0
# (tests that need a missing tool then skip, or fail under CI=true).
#   prometheus      /usr/bin/prometheus and /usr/bin/promtool (Debian 12: 2.42.0+ds; one package)
#   chromium        /usr/bin/chromium, headless screenshots of the UIs
#   docker-compose  `docker-compose config` validates docker/docker-compose.yml without a Docker
#                   daemon; skipped when the `docker compose` plugin already works
set -euo pipefail
need=()
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  need+=(prometheus)
fi
[ -x /usr/bin/chromium ] || need+=(chromium)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  need+=(docker-compose)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
    echo "install_system_deps: not root and no password-less sudo; missing: ${need[*]}" >&2
    exit 0
  fi
  SUDO="sudo -n"
fi
echo "installing Debian packages: ${need[*]}"
# env, not export: sudo drops the caller's environment
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
