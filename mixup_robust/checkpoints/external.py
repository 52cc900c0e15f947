"""Bring your own model: a classifier this project did not train, for any evaluation.

Any `nn.Module` class (or a function that builds one, such as `torchvision.models.resnet18`)
named by its import path, a state_dict file read with `torch.load(weights_only=True)` (no
pickled objects are ever executed), and the per-channel normalization the model was trained
with. It becomes `Normalize -> net`, so attacks and defenses see pixels in [0, 1] as they do
with this project's checkpoints, and it passes the same checks: finite weights, and the
number of classes and the image shape of the data.
"""

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mixup_robust.checkpoints.classifier import load_classifier
from mixup_robust.checkpoints.file import check_finite_weights
from mixup_robust.nets import Normalize


class ExternalClassifier:
    """A classifier from an architecture's import path, a state_dict file and a normalization.

    Args:
        architecture: import path of an `nn.Module` subclass or of a function returning one
            (e.g. "torchvision.models.resnet18"); imported from installed packages only.
        state_dict: file of the weights (`torch.save(model.state_dict(), path)`), loaded with
            `weights_only=True` on the CPU. RobustBench and timm checkpoints saved this way work.
        mean: per-channel mean the model was trained with, in [0, 1] pixel units.
        std: per-channel standard deviation, in [0, 1] pixel units.
        init_args: keyword arguments of the architecture (e.g. {num_classes: 10}).
        state_dict_key: key of the state_dict inside the file if it is nested (e.g.
            "state_dict" or "model"); None: the file is the state_dict itself.
        strip_prefix: a prefix removed from every key (e.g. "module." of DataParallel saves).
        image_shape: (C, H, W) the model was trained on; None: the data's shape is used.
    """

    def __init__(
        self,
        architecture: str,
        state_dict: str,
        mean: Sequence[float],
        std: Sequence[float],
        init_args: dict[str, Any] | None = None,
        state_dict_key: str | None = None,
        strip_prefix: str = "",
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.architecture = architecture
        self.state_dict = state_dict
        self.mean, self.std = list(mean), list(std)
        self.init_args = dict(init_args or {})
        self.state_dict_key = state_dict_key
        self.strip_prefix = strip_prefix
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        Normalize(self.mean, self.std)  # a wrong normalization fails here, before any loading

    def __str__(self) -> str:
        return f"{self.architecture} @ {self.state_dict}"

    def load(self, data_image_shape: Sequence[int] | None = None) -> tuple[nn.Module, dict]:
        """The `Normalize -> net` classifier (CPU, eval mode) and its num_classes / image_shape.

        The number of classes is read from one forward pass on a zero image of the model's
        image shape, so a model whose head does not fit the data is refused like one of our
        checkpoints trained on other data.

        Raises:
            FileNotFoundError: no state_dict file.
            ValueError: the architecture, the file, the weights or the shapes do not fit.
        """
        image_shape = self.image_shape or (
            tuple(data_image_shape) if data_image_shape is not None else None
        )
        if image_shape is None:
            raise ValueError(f"{self}: give image_shape (C, H, W) of the images it classifies.")
        if len(self.mean) != image_shape[0]:
            raise ValueError(
                f"{self}: mean/std have {len(self.mean)} channels but images have "
                f"{image_shape[0]}; give the normalization the model was trained with."
            )
        net = self._build()
        net.load_state_dict(self._read_weights(), strict=True)
        classifier = nn.Sequential(Normalize(self.mean, self.std), net).eval()
        with torch.no_grad():
            try:
                logits = classifier(torch.zeros(1, *image_shape))
            except RuntimeError as error:
                raise ValueError(
                    f"{self} cannot classify images of shape {image_shape}: {error}"
                ) from error
        if logits.dim() != 2:
            raise ValueError(f"{self} returns {tuple(logits.shape)}; a classifier returns (B, K).")
        return classifier, {"num_classes": logits.shape[1], "image_shape": list(image_shape)}

    def _build(self) -> nn.Module:
        module_name, _, attribute = self.architecture.rpartition(".")
        try:
            builder: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as error:
            raise ValueError(
                f"architecture={self.architecture!r} cannot be imported ({error}); give the "
                "import path of an nn.Module class, e.g. torchvision.models.resnet18."
            ) from error
        try:
            net = builder(**self.init_args)
        except TypeError as error:
            raise ValueError(f"{self.architecture}(**{self.init_args}) failed: {error}") from error
        if not isinstance(net, nn.Module):
            raise ValueError(f"{self.architecture} built a {type(net).__name__}, not an nn.Module.")
        return net

    def _read_weights(self) -> dict[str, torch.Tensor]:
        file = Path(self.state_dict)
        if not file.is_file():
            raise FileNotFoundError(
                f"No state_dict file at {file}. Save one with torch.save(model.state_dict(), path)."
            )
        try:
            contents = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # a pickle of objects, a truncated file, another format
            raise ValueError(
                f"{file} cannot be read with weights_only=True ({error}); save the state_dict "
                "(tensors only), not the model object."
            ) from error
        if self.state_dict_key is not None:
            if not isinstance(contents, dict) or self.state_dict_key not in contents:
                raise ValueError(f"{file} has no key {self.state_dict_key!r}.")
            contents = contents[self.state_dict_key]
        if not isinstance(contents, dict):
            raise ValueError(f"{file} holds a {type(contents).__name__}, not a state_dict.")
        prefix = self.strip_prefix
        state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in contents.items()}
        check_finite_weights(state, str(file))
        return state


def load_any_classifier(
    source: str | ExternalClassifier, data_image_shape: Sequence[int] | None = None
) -> tuple[nn.Module, dict]:
    """A classifier and its hyperparameters from our checkpoint path or an external model."""
    if isinstance(source, ExternalClassifier):
        return source.load(data_image_shape)
    return load_classifier(source)
