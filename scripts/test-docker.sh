#!/usr/bin/env bash
# `make test-docker`: the compose stack in a real Docker engine (tests/delivery/test_compose_up.py).
# With ../shared/docker/offline-images.sh beside the project (a machine that reaches no container
# registry), that script starts dockerd if none answers, installs the Compose v2 plugin and builds
# the base images from Debian packages; its variables (BASE_IMAGE, PROMETHEUS_IMAGE, ...) are
# exported for compose. Elsewhere the running engine pulls the official images.
# An engine this run started is stopped at the end, whatever the outcome; the exit code is
# pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# HOUSING_OFFLINE_IMAGES: the script elsewhere (a git worktree of the project, say).
OFFLINE_IMAGES=${HOUSING_OFFLINE_IMAGES:-../shared/docker/offline-images.sh}
PIDFILE="${DOCKER_WORK:-/var/tmp/housing-docker}/dockerd.pid"
say() { echo "test-docker: $*" >&2; }

engine_was_up=0
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine_was_up=1; fi
started_engine=0
# shellcheck disable=SC2329  # the EXIT trap calls it
stop_engine() {
  [ "$started_engine" = 1 ] && [ -f "$PIDFILE" ] || return 0
  local pid; pid=$(cat "$PIDFILE")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 0
  say "stopping the Docker engine this run started (pid $pid)"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
  say "dockerd (pid $pid) still running after 60 s"
}
trap stop_engine EXIT

if [ -f "$OFFLINE_IMAGES" ]; then
  say "offline: base images from Debian packages ($OFFLINE_IMAGES)"
  [ "$engine_was_up" = 1 ] || started_engine=1  # before: a failing script may have started it
  exports=$("$OFFLINE_IMAGES")
  eval "$exports"
  export HOUSING_TEST_DOCKER_OFFLINE=1
else
  say "no $OFFLINE_IMAGES: the official images are pulled"
  docker info >/dev/null 2>&1 || { say "no Docker engine answers: start dockerd first"; exit 1; }
fi
docker compose version >&2
start=$SECONDS
status=0
"$PY" -m pytest -p no:cacheprovider --no-cov --timeout=2400 -m docker \
  tests/delivery/test_compose_up.py "$@" || status=$?
say "pytest exited $status after $((SECONDS - start)) s"
exit "$status"
