"""Attacks configured from YAML; the standard ones are built on torchattacks."""

from mixup_robust.attacks.adaptive import EOTPGD, MixupInferenceAdaptivePGD
from mixup_robust.attacks.autoattack import AutoAttack
from mixup_robust.attacks.base import Attack, FreshDraws
from mixup_robust.attacks.budget import parse_budget
from mixup_robust.attacks.defense_protocols import (
    PartnerMixingDefense,
    PartnerPool,
    PixelMixingDefense,
    RandomizedDefense,
)
from mixup_robust.attacks.fgsm import FGSM
from mixup_robust.attacks.inner_pgd import InnerPGD, attack_mode
from mixup_robust.attacks.modes import preserved_modes, require_gradients
from mixup_robust.attacks.pgd import PGD
from mixup_robust.attacks.spsa import SPSA
from mixup_robust.attacks.square import Square
from mixup_robust.attacks.steps import (
    project_bounds,
    project_linf,
    project_offset,
    signed_step,
)

__all__ = [
    "EOTPGD",
    "FGSM",
    "PGD",
    "SPSA",
    "Attack",
    "AutoAttack",
    "FreshDraws",
    "InnerPGD",
    "MixupInferenceAdaptivePGD",
    "PartnerMixingDefense",
    "PartnerPool",
    "PixelMixingDefense",
    "RandomizedDefense",
    "Square",
    "attack_mode",
    "parse_budget",
    "preserved_modes",
    "project_bounds",
    "project_linf",
    "project_offset",
    "require_gradients",
    "signed_step",
]
