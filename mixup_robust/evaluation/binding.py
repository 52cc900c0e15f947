"""Defenses bound to a measurement's classifier, the data's sampling pool and its seed."""

from torch import nn

from mixup_robust.defenses import ClassPool
from mixup_robust.evaluation.data_contracts import SamplingPoolData, required_datamodule
from mixup_robust.evaluation.measurement import MeasurementModule


def bind_defenses(module: MeasurementModule, defenses: nn.ModuleList, num_classes: int) -> None:
    """Binds every defense to the module's classifier, the data's sampling pool and its seed.

    The pool (clean images by class) is built once, only if some defense mixes with it.
    """
    pool = None
    if any(defense.needs_pool for defense in defenses):
        datamodule = required_datamodule(
            module,
            SamplingPoolData,
            "Defenses with a sampling pool need a mixup_robust DataModule.",
        )
        pool = ClassPool(*datamodule.sampling_pool(), num_classes)
    for defense in defenses:
        defense.bind(module.classifier, pool, module.seed)
