"""Attacks configured from YAML; the standard ones are built on torchattacks."""

from mixup_robust.attacks.adaptive import EOTPGD, MixupInferenceAdaptivePGD
from mixup_robust.attacks.autoattack import AutoAttack
from mixup_robust.attacks.base import Attack, FreshDraws
from mixup_robust.attacks.budget import parse_budget
from mixup_robust.attacks.fgsm import FGSM
from mixup_robust.attacks.pgd import PGD
from mixup_robust.attacks.spsa import SPSA
from mixup_robust.attacks.square import Square

__all__ = [
    "EOTPGD",
    "FGSM",
    "PGD",
    "SPSA",
    "Square",
    "Attack",
    "AutoAttack",
    "FreshDraws",
    "MixupInferenceAdaptivePGD",
    "parse_budget",
]
