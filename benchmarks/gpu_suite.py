"""The GPU figures in one command: training, the fast recipe, evaluation, bf16 attacks.

On one GPU, within `--time-limit` seconds (480, compilation and data loading included), runs
four parts in this order, each under its own cap (`--cap PART=SECONDS`) cut to what is left:

- `training` (`gpu_parts/training.py`): images/s of ERM, mixup and IAT through the Trainer
  against the plain loop at the fast recipes' setting, and each option (bf16, channels_last,
  compile, device-resident data, the throttled progress bar) off and on;
- `recipe` (`gpu_parts/recipe.py`): `configs/cifar10_fast/mixup.yaml` for `--recipe-epochs`
  on the real CIFAR-10 zip: images/s, wall time, test accuracy, the full recipe's time
  extrapolated;
- `evaluation` (`gpu_parts/evaluation.py`): MI-OL and MI-PL (N = 30) under PGD-10 on 1,000
  points vs. the per-image reference loop, EOT-PGD vs. torchattacks' EOTPGD, peak CUDA
  memory, the chunk size picked;
- `bf16` (`gpu_parts/bf16.py`): the same PGD-10 in bf16 and in fp32: the share of adversarial
  examples and of decisions that differ.

Every figure is written to `<out>/gpu_suite.json` and `<out>/gpu_suite.md` as soon as it is
measured; a part that overruns its cap stops between steps (partial figures kept) and a part
that fails records its error while the suite goes on (exit status 1 at the end). The GPU,
driver, torch and CUDA versions are recorded first.

`--dry-run` runs the same code on tiny sizes on the CPU (the real zip read 12 images a class
with `limit_per_class`, or a tiny fake zip in its layout when it is absent): what
`tests/test_gpu_suite.py` runs so that the suite keeps working while no GPU is lent.

    python benchmarks/gpu_suite.py --out $OUT            # on the GPU machine (README: GPU suite)
    python benchmarks/gpu_suite.py --dry-run --out /tmp/dry
"""

import argparse
import importlib.util
import logging
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

START = time.monotonic()  # the time limit counts the imports below

# What the GPU machine's image may lack; checked before anything is imported or measured.
NEEDED = ("torch", "lightning", "torchmetrics", "torchattacks", "jsonargparse", "docstring_parser",
          "typeshed_client", "rich", "PIL", "yaml", "mixup_robust")  # fmt: skip
if missing := [name for name in NEEDED if importlib.util.find_spec(name) is None]:
    sys.exit(
        f"gpu_suite.py: missing Python packages: {', '.join(missing)}. Put the repository root "
        "on PYTHONPATH and carry the others as wheels (benchmarks/README.md, 'GPU suite')."
    )

import torch  # noqa: E402
from gpu_parts.bf16 import Bf16Part  # noqa: E402
from gpu_parts.environment import environment  # noqa: E402
from gpu_parts.evaluation import EvaluationPart, EvaluationSizes  # noqa: E402
from gpu_parts.fake_data import fake_cifar_zip  # noqa: E402
from gpu_parts.recipe import RecipePart  # noqa: E402
from gpu_parts.runner import JSON_NAME, MARKDOWN_NAME, Budget, Recorder, run_part  # noqa: E402
from gpu_parts.training import TrainingPart, TrainingSizes  # noqa: E402
from rich.console import Console  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The zip copied into the repository for the GPU machine, then the shared copy beside it.
ZIP_PLACES = (
    REPO / ".gpu_data" / "cifar10-jpeg.zip",
    REPO.parent / "shared" / "data" / "cifar10-jpeg.zip",
)
PARTS = ("training", "recipe", "evaluation", "bf16")


@dataclass
class Plan:
    """Sizes and caps of one suite run."""

    time_limit: float
    caps: dict[str, float]
    training: TrainingSizes
    recipe_epochs: int
    evaluation: EvaluationSizes
    bf16_points: int
    bf16_batch: int
    recipe_overrides: list[str] = field(default_factory=list)


GPU = Plan(
    time_limit=480, caps={"training": 170, "recipe": 140, "evaluation": 100, "bf16": 40},
    training=TrainingSizes("fast", 512, 5, 40, 10, 3, "inductor"), recipe_epochs=10,
    evaluation=EvaluationSizes(("preact18", "small"), 1000, 500, 30, 16, 100, 10),
    bf16_points=1000, bf16_batch=500,
)  # fmt: skip
DRY = Plan(
    # Generous caps: on a loaded 2-core machine the dry run must not be cut (about 2 minutes).
    time_limit=1500, caps=dict.fromkeys(PARTS, 300.0),
    training=TrainingSizes("fast-tiny", 8, 1, 2, 1, 1, "eager"), recipe_epochs=2,
    evaluation=EvaluationSizes(("small",), 12, 6, 3, 2, 4, 2), bf16_points=12, bf16_batch=6,
    recipe_overrides=[
        "--model.init_args.compile_backend", "eager",
        "--model.init_args.net.init_args.widths", "[8, 8, 16, 16]",
        "--data.init_args.batch_size", "16", "--data.init_args.eval_batch_size", "64",
        "--data.init_args.val_size", "20", "--data.init_args.limit_per_class", "12",
    ],
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and .md")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--data", type=Path, default=None,
                        help="the CIFAR-10 zip (default: .gpu_data/cifar10-jpeg.zip, else "
                        "../shared/data/cifar10-jpeg.zip)")  # fmt: skip
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--time-limit", type=float, default=None, help="seconds, all parts")
    parser.add_argument("--cap", action="append", default=[], metavar="PART=SECONDS")
    parser.add_argument("--recipe-epochs", type=int, default=None)
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's files")
    return parser.parse_args(argv)


def checked_plan(args: argparse.Namespace) -> tuple[Plan, torch.device, Path | None]:
    """The plan, device and zip; a clear error (SystemExit) before any compute on bad input."""
    plan = replace(DRY if args.dry_run else GPU)
    plan.caps = dict(plan.caps)
    for cap in args.cap:
        name, _, seconds = cap.partition("=")
        if name not in PARTS or not seconds.replace(".", "", 1).isdigit():
            sys.exit(f"--cap {cap}: write PART=SECONDS with PART one of {', '.join(PARTS)}.")
        plan.caps[name] = float(seconds)
    plan.time_limit = args.time_limit or plan.time_limit
    plan.recipe_epochs = args.recipe_epochs or plan.recipe_epochs
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("No CUDA device: the suite measures a GPU. Check it on the CPU with --dry-run.")
    if args.data is not None and not args.data.is_file():
        sys.exit(f"--data {args.data}: no such file (the CIFAR-10 zip, cifar10-jpeg.zip).")
    data = args.data or next((place for place in ZIP_PLACES if place.is_file()), None)
    if (args.out / JSON_NAME).exists() and not args.overwrite:
        sys.exit(f"{args.out / JSON_NAME} exists: choose another --out or pass --overwrite.")
    return plan, device, data


def quiet() -> None:
    """Keeps the log short (the machine returns its last 12,000 characters)."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|log_every_n_steps"
                            "|TensorBoard|tensorboardX|LightningCLI's args|removed from hparams"
                            "|LeafSpec|not supported by the model summary).*")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan, device, data = checked_plan(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet()
    console = Console(width=120, highlight=False)

    def say(text: str) -> None:
        console.print(text, markup=False)

    suite = Budget(plan.time_limit - (time.monotonic() - START))
    recorder = Recorder(args.out, {
        "command": " ".join(sys.argv), "dry_run": args.dry_run,
        "started (UTC)": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "time limit s": plan.time_limit, "caps s": plan.caps, "parts": args.parts,
        "finished": False,
    })  # fmt: skip
    recorder.data["environment"] = environment(device)
    recorder.save()
    say(f"GPU suite: {recorder.data['environment']}")
    state: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        if args.dry_run and data is None:
            data = fake_cifar_zip(Path(scratch) / "cifar10-fake.zip")
        recorder.data["suite"]["data"] = str(data)
        overrides = [*plan.recipe_overrides, "--trainer.accelerator", device.type]
        parts = {
            "training": TrainingPart(plan.training, device, args.seed),
            "recipe": RecipePart(data, plan.recipe_epochs, overrides, device, state,
                                 Path(scratch) / "recipe"),
            "evaluation": EvaluationPart(plan.evaluation, device, args.seed),
            "bf16": Bf16Part(plan.bf16_points, plan.bf16_batch, 10 if not args.dry_run else 2,
                             device, args.seed, state),
        }  # fmt: skip
        statuses = [run_part(name, parts[name], recorder, plan.caps[name], suite, say)
                    for name in PARTS if name in args.parts]  # fmt: skip
    recorder.data["suite"]["finished"] = True
    recorder.save()
    say((args.out / MARKDOWN_NAME).read_text())
    return 1 if "error" in statuses else 0


if __name__ == "__main__":
    sys.exit(main())
