"""MI-Combined (Pang, Xu, Zhu, ICLR 2020, Sec. 3.3 and 4): MI-PL detects, MI-OL answers."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from mixup_robust.defenses.base import Defense
from mixup_robust.defenses.mixup_inference import MixupInference
from mixup_robust.defenses.pool import ClassPool
from mixup_robust.seeding import Part, Stream, derive_seed


def _derived_seed(seed: int, part: Part) -> int:
    """The seed of one inner defense (PL or OL).

    The PL and OL draws are independent of each other and of a stand-alone MI defense bound
    with the same seed.
    """
    return derive_seed(seed, Stream.MI_COMBINED_PARTS, part)


class MixupInferenceCombined(Defense):
    """MI-PL as a detector, MI-OL as the answer for inputs it flags.

    The detection score of an input is the drop of the probability of the bare classifier's
    predicted class y from the plain softmax to the MI-PL average:
    p(y | x) - mean_n p(y | lambda_PL x + (1 - lambda_PL) x_n). An input whose score exceeds
    `threshold` is treated as adversarial and answered by MI-OL; the others are answered by the
    plain classifier (the paper's text) or by MI-PL (`clean_answer='mi_pl'`, the official code).

    Defaults follow the MI paper's Table 4 (CIFAR-10, mixup-trained model). Its row reads
    "lambda_OL = 0.5, lambda_OL = 0.4, threshold is 0.2", which names lambda_OL twice; this
    class reads it as lambda_PL = 0.5 and lambda_OL = 0.4.

    Args:
        pl_mixup_ratio: lambda_PL, the weight of the input in the MI-PL (detection) mixtures.
        ol_mixup_ratio: lambda_OL, the weight of the input in the MI-OL (answer) mixtures.
        threshold: detection threshold on the probability drop (a probability, in [-1, 1]).
        clean_answer: who answers inputs at or below the threshold: 'plain' (the bare
            classifier) or 'mi_pl' (the MI-PL average).
        n_executions: N, the partners averaged by each of MI-PL and MI-OL.
        chunk_size: the largest number of mixed images per forward pass; None picks it from
            the device's free memory (`mixup_robust.defenses.chunking`).
        name: label in result tables; defaults to MI-Combined.
    """

    needs_pool = True

    def __init__(
        self,
        pl_mixup_ratio: float = 0.5,
        ol_mixup_ratio: float = 0.4,
        threshold: float = 0.2,
        clean_answer: Literal["plain", "mi_pl"] = "plain",
        n_executions: int = 30,
        chunk_size: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if clean_answer not in ("plain", "mi_pl"):
            raise ValueError(f"clean_answer={clean_answer!r}; use 'plain' or 'mi_pl'.")
        self.threshold = threshold
        self.clean_answer = clean_answer
        self.mi_pl = MixupInference("predicted", pl_mixup_ratio, n_executions, chunk_size)
        self.mi_ol = MixupInference("other", ol_mixup_ratio, n_executions, chunk_size)

    @override
    def default_name(self) -> str:
        return "MI-Combined"

    def bind(
        self, classifier: nn.Module, pool: ClassPool | None = None, seed: int = 0
    ) -> "MixupInferenceCombined":
        """Binds this defense and its MI-PL and MI-OL parts (with seeds derived from seed)."""
        super().bind(classifier, pool, seed)
        self.mi_pl.bind(classifier, pool, _derived_seed(seed, Part.MI_PL))
        self.mi_ol.bind(classifier, pool, _derived_seed(seed, Part.MI_OL))
        return self

    def _plain_and_pl(
        self, images: torch.Tensor, sample_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Plain log-probs, MI-PL log-probs, the bare prediction (B,) and the score (B,)."""
        plain = F.log_softmax(self.classifier(images), dim=1)
        predicted = plain.detach().argmax(dim=1)
        mi_pl = self.mi_pl.average_over_partners(
            images, self.mi_pl.partners(predicted, sample_index)
        )
        rows = torch.arange(len(images), device=images.device)
        drop = plain.detach().exp()[rows, predicted] - mi_pl.detach().exp()[rows, predicted]
        return plain, mi_pl, predicted, drop

    def detection_score(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        """Drop of the predicted class's probability from plain softmax to MI-PL, (B,)."""
        with torch.no_grad():
            return self._plain_and_pl(images, sample_index)[3]

    @override
    def defend(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        plain, mi_pl, predicted, score = self._plain_and_pl(images, sample_index)
        output = (plain if self.clean_answer == "plain" else mi_pl).clone()
        flagged = score > self.threshold
        if flagged.any():
            # MI-OL runs only on the flagged inputs; its draws are keyed per sample, so this
            # subset gives each of them the partners it would get in any batch.
            partners = self.mi_ol.partners(predicted[flagged], sample_index[flagged])
            output[flagged] = self.mi_ol.average_over_partners(images[flagged], partners)
        return output
