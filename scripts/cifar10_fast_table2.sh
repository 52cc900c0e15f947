#!/usr/bin/env bash
# MI Table 2 in minutes on one GPU: trains ERM, mixup and IAT with the fast recipes
# (configs/cifar10_fast: FastCNN, batch 512, one-cycle, bf16, channels_last, compile, data on
# the GPU) and evaluates each on the rows of the MI paper's Table 2 (clean and PGD-10; none,
# MI-OL and, for mixup, MI-Combined) on 1,000 test points
# (configs/eval/cifar10_fast_<method>_table2.yaml). Results:
# runs/cifar10_fast/evaluate-<method>/lightning_logs/version_*/results.{json,csv}.
# Data: torchvision's cifar-10-batches-py under data/; with ZIP=<path to cifar10-jpeg.zip> the
# image-folder zip instead (e.g. ZIP=../shared/data/cifar10-jpeg.zip).
# Extra arguments go to every fit and test, e.g. --trainer.devices 1.
set -euo pipefail
cd "$(dirname "$0")/.."
data=()
if [[ -n "${ZIP:-}" ]]; then
  data=(--data mixup_robust.data.ImageFolderDataModule --data.init_args.root "$ZIP")
fi
exec scripts/train_and_evaluate.sh configs/cifar10_fast configs/eval/cifar10_fast_{method}_table2.yaml "${data[@]}" "$@"
