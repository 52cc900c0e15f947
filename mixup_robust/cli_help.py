"""The top-level `python cli.py --help`: what this project is, its subcommands and configs.

It is plain text, printed without importing torch or Lightning, so that it shows at once;
`python cli.py <subcommand> --help` is LightningCLI's full list of a subcommand's options.
"""

from mixup_robust import __version__

HELP = f"""\
mixup_robust {__version__}: train image classifiers with the mixup family of robust training
methods (mixup, AT, TRADES, interpolated AT, adversarially optimized mixup, VarMixup) and
evaluate them with inference-time defenses (Mixup Inference, VarMI, input transforms) under
oblivious and adaptive adversarial attacks. Every run is one YAML config.

usage: python cli.py [--verbose] [--threads N] SUBCOMMAND --config CONFIG [--key value ...]

subcommands:
  fit        train a model (a training config), saving checkpoints under the run directory
  validate   score a trained model on the validation split once
  test       evaluate a checkpoint (an evaluation config): results.json, results.csv, figures
  predict    write predictions.csv: each defense's prediction per test sample
  Add --help after a subcommand for all its options (`python cli.py fit --help`), and
  --print_config to see the whole config a command would run.

main configs:
  configs/quickstart/   the digits on a CPU in minutes: mixup.yaml, erm.yaml, evaluate.yaml
                        (`bash scripts/quickstart.sh` trains and evaluates both models)
  configs/cifar10/      the papers' CIFAR-10 training runs (erm, mixup, at, trades, iat, ...)
  configs/eval/         evaluations and audits of a checkpoint (give it with
                        --model.init_args.checkpoint): cifar10_mixup_inference.yaml,
                        the MI paper's tables and figures, cifar10_audit.yaml
  configs/data/         data blocks (CIFAR-100, SVHN, Tiny ImageNet, a JPEG zip) to combine

options of this front end (before or after the subcommand):
  --verbose     show third-party notices, the parser's whole message and tracebacks
                (also MIXUP_ROBUST_VERBOSE=1; MIXUP_ROBUST_TRACEBACK=1 for tracebacks only)
  --threads N   CPU threads (also MIXUP_ROBUST_THREADS=N); by default OMP_NUM_THREADS when
                set, else the CPUs available that other work leaves idle (1 to 8)

example:
  python cli.py fit --config configs/quickstart/mixup.yaml
  python cli.py test --config configs/quickstart/evaluate.yaml --model.init_args.checkpoint \\
      runs/quickstart/mixup/lightning_logs/version_0/checkpoints/last.ckpt
  python -m mixup_robust.evaluation.redraw <run>/results.json    (redraw its figures)

docs: README.md (start here, troubleshooting), docs/ (decisions, reproducing the papers,
speed), benchmarks/README.md.
"""
