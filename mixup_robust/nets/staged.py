"""The net API: a stem, a sequence of stages and a head, as in timm's models.

`forward(x) == forward_head(forward_features(x))`, where `forward_features` runs the stem and
every stage and returns the last stage's feature maps (B, D, h, w), and `forward_head` maps
them to logits: `pool_features` (any final norm, global pooling, flatten; (B, D)) then the
linear `head`. Code that works layer by layer (Manifold Mixup) runs the stages in parts with
`forward_stem` and `forward_stages(hidden, start, stop)` and checks `isinstance(net, StagedNet)`
instead of guessing at attributes.
"""

import torch
from torch import nn

__all__ = ["StagedNet", "he_normal_init_"]


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
