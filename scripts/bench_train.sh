#!/usr/bin/env bash
# Benchmark `housing train --json` end to end (real data, params.yaml, three candidates, CV,
# MLflow logging, registration) into a throwaway tracking store, and print the figures.
# Usage: scripts/bench_train.sh   (or: make bench-train)
set -euo pipefail
cd "$(dirname "$0")/.."
HOUSING=${HOUSING:-.venv/bin/housing}
PY=${PY:-.venv/bin/python}
if [[ -z "${SCIKIT_LEARN_DATA:-}" && -d ../shared/data/scikit_learn_data ]]; then
    export SCIKIT_LEARN_DATA=$(cd ../shared/data/scikit_learn_data && pwd)
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-train.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export HOUSING_DATA_DIR="$tmp/data" HOUSING_REPORTS_DIR="$tmp/reports"
export MLFLOW_TRACKING_URI="sqlite:///$tmp/mlflow.db"

"$HOUSING" data >/dev/null
echo "cores: $(nproc)   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
"$HOUSING" train --json >"$tmp/train.json"
end=$(date +%s.%N)
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$tmp/train.json" "$start" "$end" <<'PYEOF'
import json
import sys

result = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"{'candidate':<18} {'test RMSE':>9} {'MAE':>7} {'R2':>7} {'CV RMSE':>8} "
      f"{'fit s':>6} {'search s':>8} {'1-row ms':>8}")
for c in result["candidates"]:
    print(f"{c['model']:<18} {c['rmse']:>9.4f} {c['mae']:>7.4f} {c['r2']:>7.4f} "
          f"{c['cv_rmse']:>8.4f} {c['fit_seconds']:>6.1f} {c['search_seconds']:>8.1f} "
          f"{c['predict_latency_ms']:>8.2f}")
champ = result["champion"]
print(f"champion: v{champ['version']} {champ['model']} test RMSE {champ['rmse']:.4f} "
      f"R2 {champ['r2']:.4f} (promoted: {result['promoted']})")
print(f"train seconds (reported): {result['seconds']:.1f}   wall incl. start-up: {wall:.1f}")
PYEOF
