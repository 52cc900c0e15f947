"""Attacks configured from YAML; the standard ones are built on torchattacks."""

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import parse_budget
from mixup_robust.attacks.pgd import PGD

__all__ = ["PGD", "Attack", "parse_budget"]
