# syntax=docker/dockerfile:1.7
# dask-cuda GPU worker: CUDA runtime + Python 3.11 + the project with its [gpu] extra
# (the full xgboost wheel, built with CUDA, and dask-cuda[cu12]). Build from the repository root:
#   docker build -f docker/gpu.Dockerfile -t coin-engine/dask-cuda:local .
# Run it on any host with the NVIDIA driver and the NVIDIA Container Toolkit, e.g. a rented GPU:
#   docker run --gpus all --network host coin-engine/dask-cuda:local \
#     dask cuda worker tcp://SCHEDULER:8786 --resources GPU=1
# See docs/deploy.md for joining a remote scheduler safely (TLS, VPN or ssh tunnel).
#
# Versions (constraints.txt, shared with the CPU image; `make lock` regenerates it):
#   dask-cuda 26.10.0 pulls rapids-dask-dependency 26.10.0, which pins dask and distributed
#   >=2026.7.1,<2026.7.2, so both images run dask/distributed 2026.7.1 (a scheduler and its
#   workers must agree); xgboost 3.2.0 (CUDA build; the CPU image has xgboost-cpu 3.2.0);
#   cuda-bindings 12.9.x, cuda-toolkit 12.9.2 and nvidia-*-cu12 12.9 wheels.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu22.04

# The project's wheel is pure Python: built on the plain Python image, installed below.
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY trading_core ./trading_core
COPY engine_assets ./engine_assets
COPY hamilton_exec ./hamilton_exec
COPY coin_engine ./coin_engine
# PIP_CONSTRAINT (not -c) also reaches the isolated build environment (setuptools)
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_CONSTRAINT=/src/constraints.txt pip wheel --no-deps --wheel-dir /wheels .

FROM ${CUDA_IMAGE} AS worker
# NUMBA_CACHE_DIR: the package is root-owned and HOME (/app) too; numba's cache=True kernels
# need a writable cache or the first import of trading_core.features fails (docker/Dockerfile).
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NUMBA_CACHE_DIR=/var/cache/numba
COPY constraints.txt /opt/coin-engine/constraints.txt
# Ubuntu 22.04 ships Python 3.11 in universe; a venv keeps pip away from the system Python.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv "${VIRTUAL_ENV}" \
 && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir -c /opt/coin-engine/constraints.txt --upgrade pip \
 && groupadd --system --gid 10001 engine \
 && useradd --system --uid 10001 --gid engine --home-dir /app --shell /usr/sbin/nologin engine \
 && mkdir -p /var/cache/numba /app/data \
 && chown engine:engine /var/cache/numba /app/data
WORKDIR /app
# a COPY, not a bind mount from the stage: buildah skips those when the stage is cached
COPY --from=wheel /wheels /opt/coin-engine/wheels
# [gpu] installs the CUDA build of xgboost; the CPU wheel (xgboost-cpu) must not be present too.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c /opt/coin-engine/constraints.txt "$(ls /opt/coin-engine/wheels/coin_engine-*.whl)[gpu]"
COPY config ./config
USER engine
EXPOSE 8789
CMD ["dask", "cuda", "worker", "tcp://dask-scheduler:8786", "--resources", "GPU=1", \
     "--dashboard-address", ":8789"]
