"""Projected gradient descent (Madry et al. 2018) through torchattacks, untargeted or targeted."""

from typing import Literal, get_args

import torch
import torchattacks
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.attacks.targets import random_targets, second_most_likely

Target = Literal["none", "random", "second_most_likely"]
TARGETS: tuple[str, ...] = get_args(Target)
_SHORT_TARGET = {"random": "random", "second_most_likely": "second"}


class PGD(Attack):
    """L-inf PGD on the cross-entropy, untargeted or targeted.

    Untargeted PGD ascends the cross-entropy of the true label; targeted PGD descends the
    cross-entropy of a target class. Cross-entropy suits models that output logits as well as
    defenses that output log-probabilities (log-softmax leaves log-probabilities unchanged).

    Args:
        eps: L-inf radius in pixel units, a float or a fraction such as "8/255".
        step_size: step per iteration in pixel units ("2/255").
        steps: number of iterations (10, 50, 200 in the MI paper).
        random_start: start from a uniform random point of the eps-ball.
        target: 'none' (untargeted); 'random': a class drawn uniformly among those other than
            the true label, with torch's global RNG (the targeted attacks of the MI paper);
            'second_most_likely': the class with the second highest output of the attacked
            model on the clean input (VarMixup, Table 5); on a misclassified input this can
            be the true label.
        labels: what untargeted PGD moves away from: 'true' (the ground truth, the
            project's default: a misclassified point stays counted as an error) or
            'predicted' (the model's prediction on the clean input, the MI paper's official
            code, which calls its PGD without labels; the MI-paper configs use it).
        name: label in result tables; defaults to "PGD-<steps>", with the target if any.
        threat_model: 'oblivious' or 'adaptive'.
    """

    def __init__(
        self,
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        random_start: bool = True,
        target: Target = "none",
        labels: Literal["true", "predicted"] = "true",
        name: str | None = None,
        threat_model: str = "oblivious",
    ) -> None:
        super().__init__(name, threat_model)
        if labels not in ("true", "predicted"):
            raise ValueError(f"labels={labels!r}; choose 'true' or 'predicted'.")
        if labels == "predicted" and target != "none":
            raise ValueError("labels: predicted applies to untargeted PGD (target: none).")
        self.labels = labels
        if steps < 1:
            raise ValueError(f"steps={steps}; PGD needs at least one step.")
        if target not in TARGETS:
            raise ValueError(f"target={target!r}; choose one of {TARGETS}.")
        self.eps = parse_budget(eps, "eps")
        self.step_size = parse_budget(step_size, "step_size")
        self.steps = steps
        self.random_start = random_start
        self.target = target

    @override
    def default_name(self) -> str:
        if self.target == "none":
            return f"PGD-{self.steps}"
        return f"PGD-{self.steps} (targeted, {_SHORT_TARGET[self.target]})"

    def target_labels(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The target class of each image (int64, shape (B,)), from one clean forward pass."""
        with torch.no_grad():
            outputs = model(images)
        if self.target == "random":
            return random_targets(labels, outputs.shape[1])
        if self.target == "second_most_likely":
            return second_most_likely(outputs)
        raise ValueError("target_labels needs a targeted attack (target != 'none').")

    @override
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.labels == "predicted":
            with torch.no_grad():
                labels = model(images).argmax(dim=1)
        attack = torchattacks.PGD(
            model, eps=self.eps, alpha=self.step_size, steps=self.steps,
            random_start=self.random_start,
        )  # fmt: skip
        if self.target != "none":
            # Called by torchattacks after it has put the model in eval mode.
            attack.set_mode_targeted_by_function(
                lambda x, y: self.target_labels(model, x, y), quiet=True
            )
        return attack(images, labels)

    @override
    def describe(self) -> dict:
        return {
            "eps": self.eps, "step_size": self.step_size, "steps": self.steps,
            "target": self.target,
            # Recorded where it differs from the default, so default records keep their shape.
            **({"labels": self.labels} if self.labels != "true" else {}),
        }  # fmt: skip
