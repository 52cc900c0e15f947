"""AutoAttack (Croce and Hein 2020) through torchattacks, set up as the reference version.

torchattacks' AutoAttack differs from the reference implementation (fra31/auto-attack) in two
ways that this wrapper corrects:

- its APGD, APGD-T and FAB run 10 iterations, the reference 100: `steps` sets them (100);
- its `n_classes` is not the number of classes: it only sets how many target classes APGD-T
  and FAB-T try (`n_classes - 1`, the most likely classes after the top one). The reference
  tries 9 whatever the number of classes, which torchattacks' default n_classes=10 gives; it
  crashes on models with fewer than 10 classes. `n_target_classes` (9) is capped at the
  model's number of classes minus one, read from one forward pass.

Its losses (cross-entropy, DLR, margins) take the same values on logits and on log-softmax
outputs, so defenses that return log-probabilities are attacked as their classifiers would be.

Randomness: the sub-attacks reseed torch's global RNG with `seed`. A seed is drawn from the
global RNG instead (so the evaluation's per-batch seeding controls the attack), and the
global CPU and CUDA RNG states are restored afterwards, as if only that seed had been drawn.
Parameter gradients, which its sub-attacks accumulate, are restored too.
"""

from typing import Literal, get_args

import torch
import torchattacks
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.attacks.targets import num_classes_of

Version = Literal["standard", "plus", "rand"]
Norm = Literal["Linf", "L2"]
VERSIONS: tuple[str, ...] = get_args(Version)
NORMS: tuple[str, ...] = get_args(Norm)
# The DLR losses divide by gaps to the 3rd (APGD-DLR) or 4th (APGD-T) largest output.
_MIN_CLASSES = {"standard": 4, "plus": 4, "rand": 3}


class AutoAttack(Attack):
    """The AutoAttack ensemble: each image keeps the first adversarial example that fools it.

    Versions: 'standard' runs APGD-CE, APGD-T (targeted DLR), FAB-T and Square (5000
    queries); 'plus' adds restarts and the untargeted APGD-DLR and FAB; 'rand' is meant for
    randomized defenses (such as mixup inference): APGD-CE and APGD-DLR, each averaging the
    gradient over 20 draws of the defense (EOT) at every step, without restarts.

    Args:
        eps: radius in pixel units, a float or a fraction such as "8/255" (L2: at most 1).
        version: 'standard', 'plus' or 'rand' (see above).
        norm: 'Linf' or 'L2'.
        steps: iterations of APGD, APGD-T and FAB (100 in the reference AutoAttack).
        n_target_classes: target classes tried by APGD-T and FAB-T (9 in the reference).
        eot_iter: gradient draws averaged per step by the 'rand' version's APGD (20 in the
            reference); None keeps the reference. Lower it only to fit a budget, and say so.
        name: label in result tables; defaults to "AutoAttack", with version and norm if not
            the standard L-inf ones.
        threat_model: 'oblivious' or 'adaptive'.
    """

    def __init__(
        self,
        eps: Budget = "8/255",
        version: Version = "standard",
        norm: Norm = "Linf",
        steps: int = 100,
        n_target_classes: int = 9,
        eot_iter: int | None = None,
        name: str | None = None,
        threat_model: str = "oblivious",
    ) -> None:
        super().__init__(name, threat_model)
        if version not in VERSIONS:
            raise ValueError(f"version={version!r}; choose one of {VERSIONS}.")
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r}; choose one of {NORMS}.")
        if steps < 1:
            raise ValueError(f"steps={steps}; AutoAttack needs at least one step.")
        if n_target_classes < 1:
            raise ValueError(f"n_target_classes={n_target_classes}; it must be at least 1.")
        self.eps = parse_budget(eps, "eps")
        self.version = version
        self.norm = norm
        self.steps = steps
        self.n_target_classes = n_target_classes
        if eot_iter is not None and (eot_iter < 1 or version != "rand"):
            raise ValueError(f"eot_iter={eot_iter}; set it (>= 1) for version 'rand' only.")
        self.eot_iter = eot_iter

    @override
    def default_name(self) -> str:
        details = [part for part in (self.version, self.norm) if part not in ("standard", "Linf")]
        return "AutoAttack" + (f" ({', '.join(details)})" if details else "")

    @override
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        model.eval()  # as torchattacks does; the base class restores every module's mode
        num_classes = num_classes_of(model, images)
        if num_classes < _MIN_CLASSES[self.version]:
            raise ValueError(
                f"AutoAttack version {self.version!r} needs at least "
                f"{_MIN_CLASSES[self.version]} classes (DLR loss); the model has {num_classes}."
            )
        seed = int(torch.randint(0, 2**31 - 1, ()))
        attack = torchattacks.AutoAttack(
            model, norm=self.norm, eps=self.eps, version=self.version,
            n_classes=min(self.n_target_classes, num_classes - 1) + 1, seed=seed,
        )  # fmt: skip
        for sub_attack in attack._autoattack.attacks:
            if not isinstance(sub_attack, torchattacks.Square):
                sub_attack.steps = self.steps
            if self.eot_iter is not None:
                sub_attack.eot_iter = self.eot_iter
        # APGD and FAB call backward(), which fills the parameters' .grad: restored below.
        grads = {parameter: parameter.grad for parameter in model.parameters()}
        devices = [images.device] if images.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                return attack(images, labels)
        finally:
            for parameter, grad in grads.items():
                parameter.grad = grad

    @override
    def describe(self) -> dict:
        return {
            "eps": self.eps, "version": self.version, "norm": self.norm, "steps": self.steps,
            "n_target_classes": self.n_target_classes,
            **({} if self.eot_iter is None else {"eot_iter": self.eot_iter}),
        }  # fmt: skip
