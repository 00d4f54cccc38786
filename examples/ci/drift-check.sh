#!/usr/bin/env bash
# A drift check for cron, Airflow's BashOperator or an alert webhook: it acts on the exit code alone.
#   0 no drift · 3 drift found (a retrain was started, or suppressed by dedupe/cooldown) · 1 failure · 2 usage
# Usage: drift-check.sh MODEL CURRENT_DATA [local|kfp|k8s]
# Environment: MLFLOW_TRACKING_URI (required), COOLDOWN (default 6h), REPORT_DIR (default ./drift-reports),
#   for k8s: K8S_JOB, K8S_NAMESPACE; for kfp: DRIFTLOOP_KFP_HOST.
set -uo pipefail

model=${1:?usage: drift-check.sh MODEL CURRENT_DATA [local|kfp|k8s]}
current=${2:?usage: drift-check.sh MODEL CURRENT_DATA [local|kfp|k8s]}
trigger=${3:-local}
report_dir=${REPORT_DIR:-./drift-reports}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$report_dir"

extra=()
if [ "$trigger" = "k8s" ]; then
  extra+=(--k8s-job "${K8S_JOB:?set K8S_JOB to the MLTrainingJob name}" --namespace "${K8S_NAMESPACE:-default}")
fi

driftloop drift --model "$model" --current "$current" --retrain "$trigger" --cooldown "${COOLDOWN:-6h}" \
  --report "$report_dir/$model-$stamp.html" --json "$report_dir/$model-$stamp.json" "${extra[@]}"
code=$?

case $code in
  0) echo "no drift for $model" ;;
  3) echo "drift for $model; retrain: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["retrain"]; print(r["status"], "-", r.get("reason", ""))' "$report_dir/$model-$stamp.json")" ;;
  *) echo "drift check failed for $model (exit $code)" >&2 ;;
esac
# Drift is not a failure of this job: alerting reads the JSON; only errors fail the job.
if [ "$code" -eq 3 ]; then exit 0; fi
exit "$code"
