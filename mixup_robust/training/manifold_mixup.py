"""Manifold Mixup (Verma et al. 2019): mixup of hidden representations at a random layer.

The classifier is split through the `StagedNet` API of its net (no Manifold-Mixup code inside
the nets): `Normalize -> net.forward_stem -> stage 0 -> ... -> stage n - 1 ->
net.forward_head`. Layer 0 is the input pixels (before `Normalize`, so mixing there is
exactly input mixup), layer k >= 1 the output of stage k - 1.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from mixup_robust import nets
from mixup_robust.mixing import interpolate, soft_cross_entropy, soft_targets
from mixup_robust.nets import StagedNet
from mixup_robust.training.mixup import Mixup

__all__ = ["ManifoldMixup", "forward_from_layer", "forward_to_layer", "mixable_layers"]


def _staged_nets() -> list[str]:
    """The names of the project's nets that Manifold Mixup can split."""
    return sorted(
        name
        for name in nets.__all__
        if isinstance(cls := getattr(nets, name), type)
        and issubclass(cls, StagedNet)
        and cls is not StagedNet
    )


def _split(classifier: nn.Module) -> tuple[list[nn.Module], StagedNet]:
    """The modules before the net (e.g. `Normalize`) and the net of `nn.Sequential(..., net)`."""
    if not isinstance(classifier, nn.Sequential) or len(classifier) == 0:
        raise TypeError(
            f"Expected the classifier nn.Sequential(Normalize, net), got {type(classifier)}."
        )
    *prefix, net = classifier
    if not isinstance(net, StagedNet):
        raise TypeError(
            f"{type(net).__name__} cannot be split into layers for Manifold Mixup: it is not a "
            "mixup_robust.nets.StagedNet (stem, stages, head). Use one of the nets that are: "
            f"{', '.join(_staged_nets())}; or make your net a subclass of StagedNet."
        )
    return prefix, net


def mixable_layers(classifier: nn.Module) -> int:
    """The number of layers where hidden states can be mixed: 0 .. net.num_stages."""
    return _split(classifier)[1].num_stages + 1


def _check_layer(net: StagedNet, layer: int) -> None:
    if not 0 <= layer <= net.num_stages:
        raise ValueError(
            f"layer must be in 0..{net.num_stages} for {type(net).__name__} (0: the input, "
            f"k: after stage k - 1), got {layer}."
        )


def forward_to_layer(classifier: nn.Module, images: torch.Tensor, layer: int) -> torch.Tensor:
    """The hidden state at `layer`: the images (0) or the output of stage `layer - 1`.

    Args:
        classifier: `nn.Sequential(Normalize, net)` as built by `build_classifier`.
        images: pixels in [0, 1], (B, C, H, W).
        layer: 0 (the input itself) .. net.num_stages.
    """
    prefix, net = _split(classifier)
    _check_layer(net, layer)
    if layer == 0:
        return images
    hidden = images
    for module in prefix:
        hidden = module(hidden)
    return net.forward_stages(net.forward_stem(hidden), stop=layer)


def forward_from_layer(classifier: nn.Module, hidden: torch.Tensor, layer: int) -> torch.Tensor:
    """The logits for a hidden state at `layer` (the rest of the forward pass).

    `forward_from_layer(c, forward_to_layer(c, x, k), k)` equals `c(x)` for every k.
    """
    prefix, net = _split(classifier)
    _check_layer(net, layer)
    if layer == 0:
        for module in prefix:
            hidden = module(hidden)
        hidden = net.forward_stem(hidden)
    return net.forward_head(net.forward_stages(hidden, start=layer))


class ManifoldMixup(Mixup):
    """Soft-target cross-entropy on mixed hidden states at a layer k drawn per batch.

    Per batch: lambda and partners as `Mixup.draw_pairs` (lambda ~ Beta(alpha, alpha)), then
    k uniformly from `mix_layers` from the same generator; h = forward to layer k, the logits
    of lambda h_i + (1 - lambda) h_j, and targets lambda y_i + (1 - lambda) y_j. With
    `mix_layers=(0,)` it is exactly `Mixup` (same draws, same loss).

    Args:
        net: the network, called as `net(in_channels, num_classes)`; it must build a
            `mixup_robust.nets.StagedNet` (every classifier net of `mixup_robust.nets` does).
        alpha: Beta parameter (Verma et al.: 2.0 on CIFAR; the VarMixup paper's mixup: 1.0).
        ratio_per: 'sample' (one lambda per sample) or 'batch' (Verma et al.'s code).
        mix_layers: layers to mix at: 0 the input, k the output of stage k - 1; Verma et
            al.'s PreActResNet setting is (0, 1, 2).
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        alpha: float = 1.0,
        ratio_per: Literal["sample", "batch"] = "sample",
        mix_layers: Sequence[int] = (0, 1, 2),
        **kwargs: Any,
    ) -> None:
        super().__init__(net, alpha=alpha, ratio_per=ratio_per, **kwargs)
        self.mix_layers = tuple(int(layer) for layer in mix_layers)
        if not self.mix_layers:
            raise ValueError("mix_layers must name at least one layer.")
        for layer in self.mix_layers:
            _check_layer(_split(self.classifier)[1], layer)

    def draw_layer(self, rng: np.random.Generator) -> int:
        """The mixing layer of a batch, uniform over `mix_layers` (drawn after the pairs)."""
        return self.mix_layers[int(rng.integers(len(self.mix_layers)))]

    def mixed_logits(
        self,
        images: torch.Tensor,
        ratio: torch.Tensor,
        partners: torch.Tensor,
        layer: int,
    ) -> torch.Tensor:
        """Logits of ratio h_i + (1 - ratio) h_partners[i] at `layer`, (B, num_classes)."""
        hidden = forward_to_layer(self.classifier, images, layer)
        mixed = interpolate(hidden, hidden[partners], ratio)
        return forward_from_layer(self.classifier, mixed, layer)

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        ratio, partners = self.draw_pairs(images, rng)
        layer = self.draw_layer(rng)
        targets = soft_targets(labels, labels[partners], ratio, self.num_classes)
        return soft_cross_entropy(self.mixed_logits(images, ratio, partners, layer), targets)
