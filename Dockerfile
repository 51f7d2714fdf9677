# syntax=docker/dockerfile:1
# SnippetVault image: `docker build -t snippetvault .`, then `docker run --env-file .env snippetvault`.
# Stage 1 installs the pinned runtime dependencies and the project's wheel into a venv;
# stage 2 copies only that venv onto a clean base and runs it as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# The venv lives at the same path in both stages: its scripts' shebangs point into it.
RUN python -m venv /opt/snippetvault
WORKDIR /src

# Dependencies first, so a code change does not reinstall them.
COPY requirements-runtime.lock ./
RUN /opt/snippetvault/bin/pip install -r requirements-runtime.lock

COPY pyproject.toml README.md ./
COPY core ./core
COPY storage ./storage
COPY mail ./mail
COPY bot ./bot
COPY api ./api
COPY bootstrap.py ./
# A real wheel, not an editable install: migrations and templates must ship inside the packages.
RUN /opt/snippetvault/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/snippetvault/bin/pip install --no-deps /wheels/snippetvault-*.whl


FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/snippetvault/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    HTTP_HOST=0.0.0.0
RUN groupadd --system --gid 10001 snippetvault \
 && useradd --system --uid 10001 --gid snippetvault --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin snippetvault \
 && mkdir /data && chown snippetvault:snippetvault /data
COPY --from=build /opt/snippetvault /opt/snippetvault

USER snippetvault
# Not /data: a `.env` dropped into the writable volume must not become configuration.
WORKDIR /opt/snippetvault
VOLUME ["/data"]
# The HTTP server of `run` and `api` (HTTP_PORT): the REST API, /healthz, the webhook.
EXPOSE 8000
ENTRYPOINT ["snippetvault"]
CMD ["run"]
