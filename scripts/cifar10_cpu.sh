#!/usr/bin/env bash
# The CPU-scale CIFAR-10 study: trains ERM, mixup and IAT with configs/cifar10_cpu (PlainCNN,
# one-cycle, the shared JPEG zip ../shared/data/cifar10-jpeg.zip) and evaluates each with
# MI-PL, MI-OL and MI-Combined under PGD-10 (eps 8/255) on 1,000 test points
# (configs/eval/cifar10_cpu_mixup_inference.yaml). About 30 minutes per model on 2 cores
# (docs/speed.md).
# Results: runs/cifar10_cpu/evaluate-<method>/lightning_logs/version_*/results.{json,csv}.
# Extra arguments go to every fit and test (e.g. --data.init_args.root <another zip>).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/train_and_evaluate.sh configs/cifar10_cpu configs/eval/cifar10_cpu_mixup_inference.yaml "$@"
