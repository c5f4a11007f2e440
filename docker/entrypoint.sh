#!/bin/sh
# Container entrypoint: the first argument picks the role of this one image.
#   trainer  prepare the data, train the candidates, register and gate the champion; then exit
#   api      serve the champion (FastAPI + uvicorn)
#   ui       the Streamlit UI (talks to the API over HTTP only)
#   mlflow   the MLflow tracking server + model registry (extra arguments are passed on)
#   anything else is run as a command, e.g. `housing promote --version 3`
# HOST and PORT choose the listening address (defaults: all interfaces, the role's usual port).
set -eu

role="${1:-api}"
[ "$#" -gt 0 ] && shift

case "$role" in
  trainer)
    echo "trainer: preparing data"
    if [ -n "${HOUSING_DATA_SOURCE:-}" ]; then
      housing data --source "$HOUSING_DATA_SOURCE"
    else
      housing data
    fi
    # The data volume is a DVC repository of its own (no git in a container), so the batches
    # the closed loop uploads are tracked by DVC here too (`dvc add` at retrain time).
    data_dir="${HOUSING_DATA_DIR:-data}"
    if [ ! -d "$data_dir/.dvc" ]; then
      (cd "$data_dir" && dvc init --no-scm --quiet)
    fi
    # Default: train only when the registry has no champion yet, so `compose up` is quick on
    # restarts. Set HOUSING_TRAIN_ARGS="" to retrain on every run.
    echo "trainer: training against ${MLFLOW_TRACKING_URI:-the default MLflow store}"
    # shellcheck disable=SC2086  # the arguments are meant to split
    housing train ${HOUSING_TRAIN_ARGS---if-no-champion} "$@"
    echo "trainer: done"
    ;;
  api)
    exec housing serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
      --workers "${HOUSING_WORKERS:-1}" "$@"
    ;;
  ui)
    exec housing ui --host "${HOST:-0.0.0.0}" --port "${PORT:-8501}" "$@"
    ;;
  mlflow)
    exec mlflow server --host "${HOST:-0.0.0.0}" --port "${PORT:-5000}" \
      --workers "${MLFLOW_WORKERS:-1}" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
