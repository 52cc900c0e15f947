"""The net API: a stem, a sequence of stages and a head, as in timm's models.

`forward(x) == forward_head(forward_features(x))`, where `forward_features` runs the stem and
every stage and returns the last stage's feature maps (B, D, h, w), and `forward_head` maps
them to logits: `pool_features` (any final norm, global pooling, flatten; (B, D)) then the
linear `head`. Code that works layer by layer (Manifold Mixup) runs the stages in parts with
`forward_stem` and `forward_stages(hidden, start, stop)` and checks `isinstance(net, StagedNet)`
instead of guessing at attributes.

A classifier `nn.Sequential(Normalize, net)` splits at a layer: `forward_to_layer` gives the
hidden state there and `forward_from_layer` the logits from it. Layer 0 is the input pixels
(before `Normalize`), layer k >= 1 the output of stage k - 1.
"""

import torch
from torch import nn

__all__ = [
    "StagedNet",
    "check_layer",
    "forward_from_layer",
    "forward_to_layer",
    "he_normal_init_",
    "mixable_layers",
]


class StagedNet(nn.Module):
    """Base of the classifier nets: stem -> stages -> pooling -> linear head.

    A subclass registers `stem` (any module), `stages` (an `nn.ModuleList`, run in order),
    `pool` (global pooling to 1x1) and `head` (an `nn.Linear`) in its `__init__`, in the
    order their weights are to be initialized. A net whose checkpoints name its modules
    otherwise keeps those names (renaming would break the checkpoints) and provides `stages`
    as a property (`PlainCNN`) or overrides `num_stages`, `forward_stem` and `forward_stages`
    (`FastCNN`). A net with a final norm or a scaled head overrides `pool_features` or
    `forward_head`.
    """

    stem: nn.Module
    stages: nn.ModuleList
    pool: nn.Module
    head: nn.Linear

    @property
    def num_stages(self) -> int:
        """How many stages the net has (Manifold Mixup can mix after each)."""
        return len(self.stages)

    @property
    def feature_dim(self) -> int:
        """The width D of the pooled features that the linear head reads."""
        return self.head.in_features

    def forward_stem(self, images: torch.Tensor) -> torch.Tensor:
        """The stem's output for normalized images (B, C, H, W)."""
        return self.stem(images)

    def forward_stages(
        self, hidden: torch.Tensor, start: int = 0, stop: int | None = None
    ) -> torch.Tensor:
        """Runs `stages[start:stop]` on `hidden`, the output of the stem or of stage start - 1."""
        # A list slice, not `ModuleList[start:stop]`, which would build a module per call.
        for stage in list(self.stages)[start:stop]:
            hidden = stage(hidden)
        return hidden

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's feature maps (B, D, h, w) for normalized images (B, C, H, W)."""
        return self.forward_stages(self.forward_stem(images))

    def pool_features(self, features: torch.Tensor) -> torch.Tensor:
        """The last stage's maps (B, D, h, w) pooled to the head's input (B, D)."""
        return torch.flatten(self.pool(features), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of the last stage's feature maps (B, D, h, w)."""
        return self.head(self.pool_features(features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of normalized images (B, C, H, W)."""
        return self.forward_head(self.forward_features(images))


def _staged_nets() -> list[str]:
    """The names of the project's nets that Manifold Mixup can split (its StagedNet classes)."""
    found: set[type] = set()
    todo = list(StagedNet.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return sorted(
        cls.__name__
        for cls in found
        if cls.__module__.startswith(f"{__package__}.") and not cls.__name__.startswith("_")
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


def check_layer(classifier: nn.Module, layer: int) -> None:
    """Raises unless `classifier` splits into layers and `layer` is one of them.

    Raises:
        TypeError: the classifier is not `nn.Sequential(..., StagedNet)`.
        ValueError: `layer` is not in 0 .. net.num_stages.
    """
    _check_layer(_split(classifier)[1], layer)


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


def he_normal_init_(net: nn.Module) -> None:
    """Initializes every conv and batch norm of `net` in place, as torchvision's ResNet does.

    Kaiming-normal (fan_out, ReLU) conv weights, drawn in `net.modules()` order, and batch
    norms with weight 1 and bias 0; linear layers keep PyTorch's default.
    """
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
