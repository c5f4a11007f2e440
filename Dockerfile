# One image for every role of the stack; `docker/entrypoint.sh` picks it:
#   trainer (data, train, register; exits), api, ui, mlflow (tracking server + registry).
# Build: docker build -t housing .   Run: docker run --rm -p 8000:8000 housing api
# No `# syntax=` line: BuildKit's built-in frontend reads this file, so neither builder fetches
# a frontend image (builds work offline, with DOCKER_BUILDKIT=0 or 1).
# BASE_IMAGE: a mirrored or offline copy of python:3.11-slim (both stages use it), e.g.
#   docker build --build-arg BASE_IMAGE=housing-offline/python:3.11-slim -t housing .
ARG BASE_IMAGE=python:3.11-slim

# --- builder: resolve the pinned requirements into a self-contained virtualenv -------------------
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /build
# Requirements first: this layer is reused until requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml README.md ./
COPY src ./src
COPY api ./api
COPY frontend ./frontend
# The project as a wheel, not into the venv: the runtime copies the large venv (changes with
# requirements.txt) and this small wheel (changes with the code) as separate layers, so a code
# change rebuilds in seconds instead of copying the venv again.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /build/dist .

# --- runtime: the virtualenv, the project, the entrypoint; runs as an unprivileged user ----------
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="housing" \
      org.opencontainers.image.description="California house values: trainer, API, UI and MLflow server" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCIKIT_LEARN_DATA=/app/scikit_learn_data \
    HOME=/app \
    OMP_NUM_THREADS=1 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN groupadd --system --gid 10001 housing \
    && useradd --system --uid 10001 --gid housing --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin housing

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /build/dist /tmp/dist
RUN pip install --no-cache-dir --no-deps --disable-pip-version-check /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && housing --help > /dev/null
COPY docker/entrypoint.sh /usr/local/bin/housing-entrypoint
COPY docker/healthcheck.py /usr/local/lib/housing/healthcheck.py

WORKDIR /app
COPY params.yaml ./
# Directories that compose mounts named volumes on: an empty named volume takes the image's
# ownership, so the unprivileged user can write the prediction log, the MLflow store and the data.
RUN mkdir -p /app/data /app/var /app/scikit_learn_data /mlflow/artifacts \
    && chown -R housing:housing /app /mlflow \
    && chmod 0755 /usr/local/bin/housing-entrypoint

USER 10001:10001

# api 8000, ui 8501, mlflow 5000 (the role decides which one listens).
EXPOSE 8000 8501 5000

# Each role sets HOUSING_HEALTHCHECK_URL (compose does); the default is the API's /health.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=5 \
    CMD ["python", "/usr/local/lib/housing/healthcheck.py"]

ENTRYPOINT ["/usr/local/bin/housing-entrypoint"]
CMD ["api"]
