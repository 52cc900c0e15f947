"""Manifold Mixup: the mixing layer and the loss (the split: tests/nets/test_layer_split.py)."""

from functools import partial

import numpy as np
import pytest
import torch

from mixup_robust.mixing import soft_cross_entropy, soft_targets
from mixup_robust.nets import (
    MIResNet,
    PlainCNN,
    PreActResNet,
    SmallCNN,
    WideResNet,
)
from mixup_robust.training import ManifoldMixup, Mixup
from tests.helpers.cli import fit_quickstart

SHAPE = (3, 8, 8)
NETS = {
    "small_cnn": partial(SmallCNN, width=4),
    "preact_resnet18_tiny": partial(PreActResNet, num_blocks=(2, 2, 2, 2), base_width=4),
    "wrn_10_1": partial(WideResNet, depth=10, widen_factor=1),
    "mi_resnet_tiny": partial(MIResNet, num_blocks=(1, 2, 1), base_width=4),
    "plain_cnn": partial(PlainCNN, width=4),
}


def batch(size: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(size, *SHAPE, generator=generator), torch.arange(size) % 3


def test_with_the_input_layer_only_it_is_exactly_mixup():
    kwargs = {"num_classes": 3, "image_shape": SHAPE, "alpha": 1.0}
    torch.manual_seed(0)
    manifold = ManifoldMixup(NETS["small_cnn"], mix_layers=[0], **kwargs)
    torch.manual_seed(0)
    mixup = Mixup(NETS["small_cnn"], **kwargs)
    images, labels = batch()
    for seed in range(3):
        expected = mixup.training_loss(images, labels, np.random.default_rng(seed))
        loss = manifold.training_loss(images, labels, np.random.default_rng(seed))
        assert torch.equal(loss, expected)


def test_the_layer_is_drawn_after_the_pairs_from_the_batch_rng():
    module = ManifoldMixup(NETS["preact_resnet18_tiny"], num_classes=3, image_shape=SHAPE)
    module.eval()  # BatchNorm from running stats: both passes are the same function
    images, labels = batch()
    rng = np.random.default_rng(4)
    ratio, partners = module.draw_pairs(images, rng)
    layer = module.draw_layer(rng)
    targets = soft_targets(labels, labels[partners], ratio, 3)
    expected = soft_cross_entropy(module.mixed_logits(images, ratio, partners, layer), targets)
    loss = module.training_loss(images, labels, np.random.default_rng(4))
    assert torch.equal(loss, expected)
    layers = {module.draw_layer(np.random.default_rng(s)) for s in range(50)}
    assert layers == {0, 1, 2}


def test_training_updates_the_classifier():
    adam = partial(torch.optim.Adam, lr=1e-2, weight_decay=5e-4)
    module = ManifoldMixup(NETS["wrn_10_1"], num_classes=3, image_shape=SHAPE, optimizer=adam,
                           scheduler=None)  # fmt: skip
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    before = [p.clone() for p in module.parameters()]
    images, labels = batch()
    loss = module.training_loss(images, labels, np.random.default_rng(0))
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize("layers", [[3], [-1], [0, 7], []])
def test_invalid_layers_raise(layers):
    with pytest.raises(ValueError, match="layer"):
        ManifoldMixup(NETS["small_cnn"], num_classes=3, image_shape=SHAPE, mix_layers=layers)


def test_the_quickstart_config_trains_through_the_cli(tmp_path):
    checkpoint = fit_quickstart(tmp_path, "manifold_mixup", 1, "--data.init_args.batch_size", 256)
    assert checkpoint.exists()
