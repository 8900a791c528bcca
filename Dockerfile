# syntax=docker/dockerfile:1
# One image for every Python process of the platform: the gateway, each service under
# services/, and their migrations. Each Kubernetes workload chooses its process with
# `command`; the default runs the gateway.
#
# Both stages must use the same base image: the virtual environment built in the first
# links to the interpreter at /usr/local/bin. Pin it by digest in CI
# (--build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtual environment with the pinned runtime dependencies ----------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

SHELL ["/bin/bash", "-eu", "-o", "pipefail", "-c"]
WORKDIR /build
COPY requirements.in requirements.txt ./

# requirements.txt pins the complete set, including the local stack's servers (PostgreSQL,
# NATS) and the developer tools, none of which belong in a production image. So the image
# installs the "# runtime" section of requirements.in with every version taken from
# requirements.txt as a constraints file, from wheels only. The markers are checked so
# that a reshuffled requirements.in fails the build instead of installing the wrong set.
RUN grep -qx '# runtime' requirements.in \
 && grep -q '^# local stack' requirements.in \
 && sed -n '/^# runtime$/,/^# local stack/p' requirements.in \
      | sed -e 's/#.*//' -e 's/[[:space:]]*$//' | grep -v '^$' > runtime.in \
 && test -s runtime.in \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: --constraint requirements.txt --requirement runtime.in \
 && /opt/venv/bin/pip check

# ---- runtime: the interpreter, the venv and our packages; nothing writable ---------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG VERSION=dev
ARG REVISION=unknown

LABEL org.opencontainers.image.title="retail-platform" \
      org.opencontainers.image.description="Retail middle-platform: gateway and gRPC services" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# The root filesystem is mounted read-only in Kubernetes: no byte-code is written at run
# time (it is compiled below instead) and HOME points at the /tmp emptyDir.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONPATH=/app:/app/gen/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080

RUN groupadd --system --gid "${APP_UID}" app \
 && useradd --system --uid "${APP_UID}" --gid app --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The build context is an allow-list (.dockerignore): servicekit/, gateway/, services/ and
# gen/python/ when they exist, so a package that is not written yet does not break the build.
# Files stay owned by root: the process can read its code but not change it.
COPY . /app
# Byte-code is compiled once here; unchecked-hash .pyc files are used without comparing
# timestamps, which is safe because the image never changes after it is built.
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash /app

USER ${APP_UID}:${APP_UID}
# 8080: the gateway's HTTP; 50051: each service's gRPC.
EXPOSE 8080 50051
CMD ["python", "-m", "gateway"]
