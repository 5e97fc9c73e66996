# syntax=docker/dockerfile:1.7
# dask-cuda GPU worker: CUDA runtime + Python 3.11 + the project with its [gpu] extra
# (the full xgboost wheel, built with CUDA, and dask-cuda[cu12]). Build from the repository root:
#   docker build -f docker/gpu.Dockerfile -t coin-engine/dask-cuda:local .
# Run it on any host with the NVIDIA driver and the NVIDIA Container Toolkit, e.g. a rented GPU:
#   docker run --gpus all --network host coin-engine/dask-cuda:local \
#     dask cuda worker tcp://SCHEDULER:8786 --resources GPU=1
# See docs/deploy.md for joining a remote scheduler safely (TLS, VPN or ssh tunnel).

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu22.04

FROM ${CUDA_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Ubuntu 22.04 ships Python 3.11 in universe; a venv keeps pip away from the system Python.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv "${VIRTUAL_ENV}" \
 && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --upgrade pip \
 && groupadd --system --gid 10001 engine \
 && useradd --system --uid 10001 --gid engine --home-dir /app --shell /usr/sbin/nologin engine
WORKDIR /app
COPY pyproject.toml README.md ./
COPY trading_core ./trading_core
COPY engine_assets ./engine_assets
COPY hamilton_exec ./hamilton_exec
# [gpu] installs the CUDA build of xgboost; the CPU wheel (xgboost-cpu) must not be present too.
RUN --mount=type=cache,target=/root/.cache/pip pip install ".[gpu]"
COPY config ./config
RUN mkdir -p /app/data && chown engine:engine /app/data
USER engine
EXPOSE 8789
CMD ["dask", "cuda", "worker", "tcp://dask-scheduler:8786", "--resources", "GPU=1", \
     "--dashboard-address", ":8789"]
