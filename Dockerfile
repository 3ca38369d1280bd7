# syntax=docker/dockerfile:1
# The liveness service image. The models are not in the repository: pass their directory as
# the named build context "models" (the layout of ../shared/models; see NOTICE.md there):
#
#   docker build --build-context models=../shared/models -t facia-liveness .
#
# They are verified (sha256) and converted to OpenVINO IR in the build stage; only the IR
# reaches the final image. Everything at run time goes through bin/entrypoint, the same
# script `make serve` and the tests use.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Placeholder replaced by `--build-context models=DIR`; without it the build stops with
# "model file missing".
FROM scratch AS models

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=models . /models-src
# SECRET_KEY here only lets Django's settings load for this one command; nothing is kept.
RUN SECRET_KEY=build-only FACIA_VAR_DIR=/tmp/build-var PYTHON=python \
    MODEL_SOURCE=/models-src MODEL_DIR=/opt/models \
    bin/entrypoint install-models \
    && rm -rf /tmp/build-var /opt/models/cache

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHON=python \
    HOST=0.0.0.0 \
    PORT=5001 \
    FACIA_VAR_DIR=/var/lib/facia \
    MODEL_DIR=/opt/models \
    MODEL_SOURCE=/opt/models-source-not-in-image \
    PROMETHEUS_MULTIPROC_DIR=/tmp/facia-metrics \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 facia \
    && useradd --system --uid 10001 --gid facia --home-dir /var/lib/facia \
       --shell /usr/sbin/nologin facia \
    && install -d -o facia -g facia -m 0750 /var/lib/facia
COPY --from=build /opt/venv /opt/venv
# The OpenVINO compile cache is written next to the models on first start.
COPY --from=build --chown=facia:facia /opt/models /opt/models
WORKDIR /app
COPY --from=build /app /app
USER 10001:10001
EXPOSE 5001
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["bin/healthcheck"]
ENTRYPOINT ["bin/entrypoint"]
CMD ["serve"]
