#!/usr/bin/env bash
# The main job on the embedded digits: train mixup and ERM models, then score each with
# Mixup Inference under PGD-10 and PGD-20 and print the tables. The two pipelines (fit, then
# evaluate) run side by side, one torch thread each (THREADS=n to change; the README's
# numbers were measured with one), each writing its log to runs/quickstart/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
THREADS=${THREADS:-1}
LOGS=runs/quickstart/logs
mkdir -p "$LOGS"

latest_checkpoint() {  # the newest last.ckpt under a run directory
  ls -t "$1"/lightning_logs/version_*/checkpoints/last.ckpt | head -n 1
}

pipeline() {  # fit one method, then evaluate its last.ckpt
  local method=$1 checkpoint
  "$PYTHON" cli.py --threads "$THREADS" fit --config "configs/quickstart/$method.yaml"
  checkpoint=$(latest_checkpoint "runs/quickstart/$method")
  echo "Evaluating $method: $checkpoint"
  "$PYTHON" cli.py --threads "$THREADS" test --config configs/quickstart/evaluate.yaml \
    --model.init_args.checkpoint "$checkpoint" \
    --trainer.default_root_dir "runs/quickstart/evaluate-$method"
}

start=$SECONDS
declare -A pids
for method in mixup erm; do
  echo "Training and evaluating $method (log: $LOGS/$method.log)"
  pipeline "$method" > "$LOGS/$method.log" 2>&1 &
  pids[$method]=$!
done
failed=0
for method in mixup erm; do
  if ! wait "${pids[$method]}"; then
    echo "The $method pipeline failed; the end of $LOGS/$method.log:" >&2
    tail -n 20 "$LOGS/$method.log" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
for method in mixup erm; do
  echo
  echo "== $method: $(grep '^Evaluating' "$LOGS/$method.log")"
  sed -n '/^Accuracy (%)/,/every field in results.json/p' "$LOGS/$method.log"
done
echo
echo "Done in $((SECONDS - start)) s; run folders under runs/quickstart/."
