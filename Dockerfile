# One image for the web, worker and release (migrate) commands. Multi-stage: build tools stay
# in the first stage; the runtime is the slim base, a venv, the migrations, and a non-root user.
FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /src
# The locked dependencies first (their layer outlives code changes), each file checked against
# the lock's hashes; then the service itself, resolving nothing, and pip check for a lock that
# left something out.
COPY requirements/runtime.txt ./requirements/
RUN /venv/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY service ./service
RUN /venv/bin/pip install --no-deps . && /venv/bin/pip check

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=app:app pyproject.toml ./
COPY --chown=app:app migrations ./migrations
ENV PATH="/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json
USER app
EXPOSE 8080
# fly.toml picks the command per process group; this default serves webhooks.
CMD ["clerk-replica", "serve"]
