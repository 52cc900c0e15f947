#!/usr/bin/env bash
# Trains each method of a recipe folder and evaluates it; used by cifar10_fast_table2.sh and
# cifar10_cpu.sh (read those first). Prints the wall time of every phase.
#   scripts/train_and_evaluate.sh <recipe folder> <evaluation config> [cli args]
# where {method} in the evaluation config's path stands for each method's name
# (configs/eval/cifar10_fast_{method}_table2.yaml).
# Environment: PYTHON (python), METHODS ("erm mixup iat"), RUNS (runs), FIT_ARGS and EVAL_ARGS
# (extra arguments of `fit` only / `test` only, split on spaces); [cli args] go to both.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
METHODS=${METHODS:-"erm mixup iat"}
RUNS=${RUNS:-runs}
recipes=$1
evaluation=$2
shift 2
name=$(basename "$recipes")
read -r -a fit_args <<< "${FIT_ARGS:-}"
read -r -a eval_args <<< "${EVAL_ARGS:-}"

latest_checkpoint() {  # the newest last.ckpt under a run directory
  ls -t "$1"/lightning_logs/version_*/checkpoints/last.ckpt | head -n 1
}

for method in $METHODS; do
  root="$RUNS/$name/$method"
  start=$SECONDS
  "$PYTHON" cli.py fit --config "$recipes/$method.yaml" --trainer.default_root_dir "$root" \
    "${fit_args[@]}" "$@"
  echo "[$name] fit $method: $((SECONDS - start)) s"
  config=${evaluation//\{method\}/$method}
  start=$SECONDS
  "$PYTHON" cli.py test --config "$config" \
    --model.init_args.checkpoint "$(latest_checkpoint "$root")" \
    --trainer.default_root_dir "$RUNS/$name/evaluate-$method" "${eval_args[@]}" "$@"
  echo "[$name] evaluate $method: $((SECONDS - start)) s"
done
