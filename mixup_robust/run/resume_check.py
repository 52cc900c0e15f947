"""An honest resume: a resumed run trains with this command's settings, or is refused.

LightningCLI's `fit --ckpt_path` applies the checkpoint's hyperparameters over the config and
the command line without a word. The CLI does not: it compares the settings of the resumed
run with those the checkpoint records (`settings_of_checkpoint`, `settings_of_run`), refuses
any difference and lists each one (`check_resume`), unless the user accepts it by name
(`--resume_overrides lr,max_epochs`); then the new value is what trains and what config.yaml
records. Another training class, net, optimizer class or learning-rate schedule is always
refused (`NEVER_ACCEPTED`).

Settings are flat dotted keys, as in a config: `model.class_path`,
`model.init_args.optimizer.init_args.lr`, `data.init_args.batch_size`, `trainer.max_epochs`.
The model's are its saved hyperparameters (every checkpoint holds them); the data's and the
trainer's are recorded by `run_settings.RunSettings` in checkpoints written since.
"""

from collections.abc import Mapping
from enum import Enum

import lightning as L

SETTINGS_KEY = "mixup_robust_settings"
# The trainer's arguments that change what is trained (the rest say where and how it runs).
TRAINER_SETTINGS = (
    "max_epochs",
    "max_steps",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "precision",
)
# Where and how fast a run executes, not what it learns: a resume may change them freely.
EXECUTION_SETTINGS = frozenset({
    "model.init_args.channels_last",
    "model.init_args.compile",
    "model.init_args.compile_backend",
    "data.init_args.root",
    "data.init_args.download",
    "data.init_args.num_workers",
    "data.init_args.device_resident",
    "data.init_args.eval_batch_size",
})  # fmt: skip
# A resume into another training class or net cannot continue the same run: never accepted.
# Nor can a resume honour another optimizer class or schedule: Lightning restores the
# optimizer's state and the scheduler's whole state (milestones, length, position) over them.
NEVER_ACCEPTED = (
    "model.class_path",
    "model.init_args.net",
    "model.init_args.optimizer.class_path",
    "model.init_args.scheduler",
    "model.init_args.scheduler_interval",
)
ABSENT = "<not set>"

Difference = tuple[str, object, object]  # (key, the checkpoint's value, this run's value)


class ResumeMismatchError(ValueError):
    """A resume would train with other settings than its checkpoint's, and was not told to."""


def flatten(prefix: str, value: object) -> dict[str, object]:
    """`{dotted key: value}` of nested mappings; tuples become lists (YAML has only lists)."""
    if isinstance(value, Mapping):
        flat: dict[str, object] = {}
        for key, inner in value.items():
            flat |= flatten(f"{prefix}.{key}", inner)
        return flat
    return {prefix: _plain(value)}


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value.value if isinstance(value, Enum) else value


def model_settings(hparams: Mapping) -> dict[str, object]:
    """A module's saved hyperparameters as settings (`model.class_path`, `model.init_args.*`)."""
    settings = flatten("model.init_args", {k: v for k, v in hparams.items() if k[0] != "_"})
    if "_class_path" in hparams:
        settings["model.class_path"] = hparams["_class_path"]
    return settings


def settings_of_run(model: L.LightningModule, data: Mapping | None, trainer: L.Trainer) -> dict:
    """The settings this run trains with (`data`: the config's class_path and init_args)."""
    settings = model_settings(model.hparams)
    settings |= flatten("data", dict(data or {}))
    for name in TRAINER_SETTINGS:
        settings[f"trainer.{name}"] = _plain(getattr(trainer, name))
    return _compared(settings)


def settings_of_checkpoint(checkpoint: Mapping) -> dict:
    """The settings a checkpoint records (its model's, and the rest since `RunSettings`)."""
    settings = model_settings(checkpoint.get("hyper_parameters") or {})
    recorded = checkpoint.get(SETTINGS_KEY)
    if isinstance(recorded, Mapping):
        settings |= recorded
    elif checkpoint.get("schedule_max_epochs") is not None:  # written before RunSettings
        settings["trainer.max_epochs"] = checkpoint["schedule_max_epochs"]
    return _compared(settings)


def _compared(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key not in EXECUTION_SETTINGS}


def _parts(key: str) -> list[str]:
    return key.split(".")


def matches(name: str, key: str) -> bool:
    """Whether an accepted name covers a key: its parts occur in the key's, in a row.

    `lr` covers `model.init_args.optimizer.init_args.lr`; `optimizer` covers the optimizer's
    class and every argument; `trainer.max_epochs` only that key.
    """
    wanted, parts = _parts(name), _parts(key)
    return any(parts[i : i + len(wanted)] == wanted for i in range(len(parts) - len(wanted) + 1))


def short_name(key: str, keys: list[str]) -> str:
    """The shortest tail of `key` that names it alone among `keys` (for `--resume_overrides`)."""
    parts = _parts(key)
    for start in range(len(parts) - 1, -1, -1):
        name = ".".join(parts[start:])
        if [other for other in keys if matches(name, other)] == [key]:
            return name
    return key


def differences(saved: Mapping, current: Mapping) -> list[Difference]:
    """Each setting the checkpoint records with another value in this run (sorted by key).

    A setting this run has and the checkpoint does not record (an older checkpoint, a new
    argument) is not a difference: nothing says it changed.
    """
    return [
        (key, value, current.get(key, ABSENT))
        for key, value in sorted(saved.items())
        if current.get(key, ABSENT) != value
    ]


def check_resume(
    saved: Mapping, current: Mapping, accepted: list[str], source: str
) -> list[Difference]:
    """Returns the differences `accepted` names; raises if any other one remains.

    Args:
        saved: the checkpoint's settings (`settings_of_checkpoint`).
        current: this run's (`settings_of_run`).
        accepted: names of settings the user lets change (`--resume_overrides`).
        source: the checkpoint, as the message names it.

    Raises:
        ResumeMismatchError: a setting differs and is not accepted, a name matches no setting,
            or a `NEVER_ACCEPTED` one differs (training class, net, optimizer class,
            schedule), named or not.
    """
    keys = sorted(set(saved) | set(current))
    unknown = [name for name in accepted if not any(matches(name, key) for key in keys)]
    if unknown:
        raise ResumeMismatchError(
            f"--resume_overrides names {', '.join(unknown)}: no setting of this run has that "
            "name. Settings are dotted keys (model.init_args.optimizer.init_args.lr, "
            "trainer.max_epochs); a name covers every key in which its parts occur in a row "
            "(lr, optimizer, max_epochs)."
        )
    found = differences(saved, current)
    fixed = [d for d in found if any(matches(name, d[0]) for name in NEVER_ACCEPTED)]
    if fixed:
        raise ResumeMismatchError(
            f"{source} was trained with another training class, net, optimizer class or "
            "learning-rate schedule than this run's:\n"
            + listing(fixed)
            + "\nA resume continues the same run and cannot change these (the checkpoint's "
            "weights, optimizer state and schedule are restored): start a new run (no "
            "--ckpt_path), or resume with the config this checkpoint was trained with."
        )
    refused = [d for d in found if not any(matches(name, d[0]) for name in accepted)]
    if refused:
        names = ",".join(dict.fromkeys(short_name(key, keys) for key, _, _ in refused))
        raise ResumeMismatchError(
            f"This resume has other settings than {source} was trained with; it would train "
            "with this run's values:\n"
            + listing(refused)
            + "\nResume with the checkpoint's settings (its run's config.yaml holds them), or "
            f"accept these changes by name: --resume_overrides {names}"
        )
    return found


def listing(found: list[Difference]) -> str:
    """One line per difference: key, the checkpoint's value, this run's."""
    return "\n".join(f"  {key}: checkpoint {old!r}, this run {new!r}" for key, old, new in found)


def parse_overrides(text: str | None) -> list[str]:
    """The names of a `--resume_overrides` comma list (empty for None)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]
