# One image for the web, worker and release (migrate) commands. Multi-stage: build tools stay
# in the first stage; the runtime is the slim base, a venv, the migrations, and a non-root user.
# Both stages start from one base image. Pin it by digest, so that a rebuild gets the same bytes:
#   docker buildx imagetools inspect python:3.12-slim   (its "Digest:" line, the index's)
# then write python:3.12-slim@sha256:<that digest> in both FROM lines; repeat to take the slim
# image's security updates. The digest below is the multi-arch index of python:3.12-slim as
# published Dockerfiles pinned it in 2026 (Docker Hub was not reachable where it was written).
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /src
# The locked build backend and dependencies first (their layer outlives code changes), each
# file checked against the lock's hashes; then the service itself, built by that backend
# without build isolation (so resolving and fetching nothing), and pip check for a lock that
# left something out.
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN /venv/bin/pip install --require-hashes --no-deps -r requirements/build.txt
RUN /venv/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY service ./service
RUN /venv/bin/pip install --no-deps --no-build-isolation . && /venv/bin/pip check

FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
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
