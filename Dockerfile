# The dyngen image: API, worker and CLI in one. CPU torch by default; the compose file's
# GPU worker builds it with TORCH_INDEX pointing at a CUDA wheel index.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# pyproject.toml's pin; installed from TORCH_INDEX alone, so an index without this build fails
# the image instead of pip quietly taking PyPI's wheel (a CUDA 13 build of 2.13.0)
ARG TORCH_VERSION=2.13.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DYNGEN_DATA_DIR=/data \
    DYNGEN_STORAGE_DIR=/data/storage

WORKDIR /app
COPY pyproject.toml README.md ./
COPY model ./model
COPY core ./core
COPY api ./api
COPY worker ./worker
COPY cli ./cli
COPY migrations ./migrations
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}" \
    && pip install . \
    && useradd --create-home --uid 1000 dyngen \
    && mkdir -p /data/storage \
    && chown -R dyngen /data

USER dyngen
EXPOSE 8000
CMD ["dyngen", "api", "--host", "0.0.0.0", "--port", "8000"]
