#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real, only when missing:
# prometheus (+ promtool), prometheus-alertmanager (+ amtool), chromium (Playwright's browser
# tests), wrk (the load generator) and postgresql (initdb/pg_ctl: the prediction log's test on a
# throwaway cluster; Debian keeps them in /usr/lib/postgresql/<version>/bin, off the PATH).
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ||
  missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: need ${missing[*]} but apt-get is not available; install them by hand" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
