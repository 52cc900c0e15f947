"""Plain torch networks: classifiers take pixels after `Normalize` and return logits."""

from mixup_robust.nets.classifier import NetFactory, build_classifier
from mixup_robust.nets.fast_cnn import FastCNN
from mixup_robust.nets.mi_resnet import MIResNet, MIResNet50
from mixup_robust.nets.normalize import Normalize
from mixup_robust.nets.plain_cnn import PlainCNN
from mixup_robust.nets.preact_resnet import (
    PreActResNet,
    PreActResNet18,
    PreActResNet34,
    PreActResNet50,
)
from mixup_robust.nets.small_cnn import SmallCNN
from mixup_robust.nets.staged import StagedNet
from mixup_robust.nets.vae import VAE
from mixup_robust.nets.wide_resnet import WideResNet

__all__ = [
    "VAE",
    "FastCNN",
    "MIResNet",
    "MIResNet50",
    "NetFactory",
    "Normalize",
    "PlainCNN",
    "PreActResNet",
    "PreActResNet18",
    "PreActResNet34",
    "PreActResNet50",
    "SmallCNN",
    "StagedNet",
    "WideResNet",
    "build_classifier",
]
