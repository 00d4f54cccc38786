# The driftloop project image: every KFP component, the MLTrainingJob's pods and `driftloop serve` run in it.
#   make image                      # tags ghcr.io/driftloop/driftloop:<driftloop.__version__>
#   make image VARIANT=cuda         # tags ghcr.io/driftloop/driftloop:<version>-cuda: torch built for CUDA
#   make image IMAGE=registry.local/driftloop:dev
# An MLTrainingJob with resources.gpu > 0 and no spec.image trains in the -cuda tag.
# The KFP components default to the same name and tag (driftloop.constants.project_image; $DRIFTLOOP_IMAGE overrides).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# Must equal the torch pin in pyproject.toml (a test checks). VARIANT picks the wheel index: cpu keeps
# the image small (an unpinned torch from PyPI would pull a multi-GB CUDA build); cuda is for GPU
# nodes (the wheels bundle the CUDA runtime: the node needs only its NVIDIA driver). CUDA_TAG is
# the index's CUDA build; TORCH_INDEX_URL, when set, overrides both.
ARG TORCH_VERSION=2.13.0
ARG VARIANT=cpu
ARG CUDA_TAG=cu128
ARG TORCH_INDEX_URL=""
ARG VERSION=dev

LABEL org.opencontainers.image.title="driftloop" \
      org.opencontainers.image.description="validate → feature → train → evaluate → gated deploy, with MLflow" \
      org.opencontainers.image.version="${VERSION}" \
      io.driftloop.variant="${VARIANT}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GX_ANALYTICS_ENABLED=false \
    MLFLOW_ENABLE_TELEMETRY=false

RUN groupadd --system --gid 10001 driftloop \
    && useradd --system --uid 10001 --gid driftloop --create-home --home-dir /home/driftloop driftloop

WORKDIR /opt/driftloop

# torch first, pinned, from the variant's index; then the project, whose pyproject.toml pins resolve around it.
RUN case "${VARIANT}" in \
      cpu) index="https://download.pytorch.org/whl/cpu" ;; \
      cuda) index="https://download.pytorch.org/whl/${CUDA_TAG}" ;; \
      *) echo "VARIANT must be cpu or cuda, not '${VARIANT}'" >&2; exit 2 ;; \
    esac \
    && pip install --index-url "${TORCH_INDEX_URL:-$index}" "torch==${TORCH_VERSION}"
# Everything pyproject.toml maps into the package; .dockerignore keeps tests, data and virtualenvs out.
COPY . .
RUN pip install "./[grpc]" \
    && driftloop --version

USER 10001:10001
WORKDIR /home/driftloop
ENTRYPOINT ["driftloop"]
CMD ["--help"]
