# syntax=docker/dockerfile:1
# One image for the API, the worker and the bot; docker-compose.yml picks the command.
# Dependencies come from uv.lock exactly (`--frozen`), without the dev group.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM python:${PYTHON_VERSION}-slim

COPY --from=uv /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    ARTIFACTS_DIR=/data/artifacts

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project

COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

RUN useradd --system --uid 10001 --home-dir /app goalflow \
    && mkdir -p /data/artifacts \
    && chown -R goalflow /data
USER goalflow
VOLUME ["/data"]
EXPOSE 8000

# The API migrates the database to the newest Alembic revision before it serves; workers and the
# bot (other commands) start only once the API is healthy, so they always see a migrated schema.
CMD ["sh", "-c", "alembic upgrade head && exec python -m api.main"]
