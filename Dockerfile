# One image for every step of the compiled pipeline (Vertex AI Pipelines, Kubeflow
# Pipelines 2.x) and for the Beam workers of Dataflow, Flink or Spark runs.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/qqp-tfx:TAG
#
# GPU training: add --build-arg TF_CUDA=true (CUDA/cuDNN wheels for TensorFlow; the
# NVIDIA driver comes from the host). See docs/running_at_scale.md.
ARG PYTHON_IMAGE=python:3.10-slim-bookworm
ARG BEAM_VERSION=2.74.0

# Beam's worker boot program, so that Dataflow / portable runners can use this image
# as --sdk_container_image. Its version must match apache-beam in uv.lock.
FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam

FROM ${PYTHON_IMAGE}
ARG TF_CUDA=false

# uv, the same version as the Makefile's, to install exactly what uv.lock pins.
COPY --from=ghcr.io/astral-sh/uv:0.9.7 /uv /usr/local/bin/uv
COPY --from=beam /opt/apache/beam /opt/apache/beam

# The project lives at /pipeline (the `image-root` of `qqp-tfx compile`); its virtual
# environment comes first on PATH, so `python` is the one TFX's container command runs.
WORKDIR /pipeline
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/pipeline/.venv \
    PATH=/pipeline/.venv/bin:$PATH \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1
# (The last one stops Beam's boot from starting workers in a fresh venv that would
# not see /pipeline/.venv.)

# Dependencies first (cached while only the code changes): locked, no dev group. The
# venv is seeded with pip for Beam's boot, which pip-installs any staged packages.
COPY pyproject.toml uv.lock ./
RUN uv venv --seed --python python3.10 .venv \
    && uv sync --frozen --no-dev --inexact --no-install-project \
    && if [ "$TF_CUDA" = "true" ]; then \
         uv pip install --no-cache "tensorflow[and-cuda]==2.16.2"; \
       fi \
    && rm -rf /root/.cache

# Then the project itself (installed editable: /pipeline is on sys.path, so the
# components' import paths and the curated schema resolve inside the image).
# (--inexact keeps pip and the optional CUDA wheels.)
COPY . .
RUN uv sync --frozen --no-dev --inexact && rm -rf /root/.cache

# Vertex AI / KFP steps override the command with TFX's
#   python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...
# Beam runners start the image's entrypoint: the Beam SDK worker.
ENTRYPOINT ["/opt/apache/beam/boot"]
