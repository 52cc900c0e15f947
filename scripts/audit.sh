#!/usr/bin/env bash
# The defense audit on the embedded digits (docs/audit.md): trains the quickstart mixup model
# if runs/quickstart/ has none, then audits none, MI-PL, MI-OL, MI-Combined and the four
# input-transform baselines and prints the tables. With VAE=1 it also trains the quickstart
# MMD-VAE (if missing) and audits VarMI. Minutes on a laptop CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

latest_checkpoint() {  # the newest last.ckpt under a run directory, or nothing
  ls -t "$1"/lightning_logs/version_*/checkpoints/last.ckpt 2>/dev/null | head -n 1 || true
}

trained() {  # the newest checkpoint of a quickstart method, trained first if there is none
  local checkpoint
  checkpoint=$(latest_checkpoint "runs/quickstart/$1")
  if [ -z "$checkpoint" ]; then
    "$PYTHON" cli.py fit --config "configs/quickstart/$1.yaml" >&2
    checkpoint=$(latest_checkpoint "runs/quickstart/$1")
  fi
  echo "$checkpoint"
}

model=$(trained mixup)
extra=()
if [ "${VAE:-0}" = 1 ]; then
  vae=$(trained vae)
  extra+=("--model.init_args.defenses+={\"class_path\": \"mixup_robust.defenses.VarMixupInference\", \"init_args\": {\"vae_ckpt\": \"$vae\", \"n_executions\": 10}}")
fi
echo "Auditing $model"
"$PYTHON" cli.py test --config configs/quickstart/audit.yaml \
  --model.init_args.checkpoint "$model" ${extra[@]+"${extra[@]}"}
