# The driftloop project image: every KFP component, the MLTrainingJob's pods and `driftloop serve` run in it.
#   make image                      # tags ghcr.io/driftloop/driftloop:<driftloop.__version__>
#   make image IMAGE=registry.local/driftloop:dev
# The KFP components default to the same name and tag (driftloop.constants.project_image; $DRIFTLOOP_IMAGE overrides).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# Must equal the torch pin in pyproject.toml (a test checks). The CPU wheel index keeps the image small:
# an unpinned torch from PyPI would pull a multi-GB CUDA build.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG VERSION=dev

LABEL org.opencontainers.image.title="driftloop" \
      org.opencontainers.image.description="validate → feature → train → evaluate → gated deploy, with MLflow" \
      org.opencontainers.image.version="${VERSION}" \
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

# torch first, pinned, from the CPU index; then the project, whose pyproject.toml pins resolve around it.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
# Everything pyproject.toml maps into the package; .dockerignore keeps tests, data and virtualenvs out.
COPY . .
RUN pip install . \
    && driftloop --version

USER 10001:10001
WORKDIR /home/driftloop
ENTRYPOINT ["driftloop"]
CMD ["--help"]
