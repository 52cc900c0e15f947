#!/usr/bin/env bash
# The main job on the embedded digits: train mixup and ERM models, then score each with
# Mixup Inference under PGD-10 and print the tables. A few minutes on a laptop CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

latest_checkpoint() {  # the newest last.ckpt under a run directory
  ls -t "$1"/lightning_logs/version_*/checkpoints/last.ckpt | head -n 1
}

for method in mixup erm; do
  "$PYTHON" cli.py fit --config "configs/quickstart/$method.yaml"
  checkpoint=$(latest_checkpoint "runs/quickstart/$method")
  echo "Evaluating $method: $checkpoint"
  "$PYTHON" cli.py test --config configs/quickstart/evaluate.yaml \
    --model.init_args.checkpoint "$checkpoint" \
    --trainer.default_root_dir "runs/quickstart/evaluate-$method"
done
