"""The net API (`StagedNet`): every classifier net is stem -> stages -> head, whole or in parts."""

from functools import partial

import pytest
import torch

from mixup_robust import nets
from mixup_robust.nets import (
    FastCNN,
    MIResNet,
    PlainCNN,
    PreActResNet,
    SmallCNN,
    StagedNet,
    WideResNet,
)

# Tiny versions of every classifier net, with their number of stages.
NETS = {
    "SmallCNN": (partial(SmallCNN, width=4), 2),
    "PlainCNN": (partial(PlainCNN, width=4), 3),
    "FastCNN": (partial(FastCNN, widths=(4, 8, 8, 8)), 3),
    "PreActResNet": (partial(PreActResNet, num_blocks=(1, 1), base_width=4), 2),
    "WideResNet": (partial(WideResNet, depth=10, widen_factor=1), 3),
    "MIResNet": (partial(MIResNet, num_blocks=(1, 1, 1), base_width=4), 3),
}


def net_and_images(name: str) -> tuple[StagedNet, torch.Tensor]:
    torch.manual_seed(0)
    net = NETS[name][0](3, 5).eval()
    return net, torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_every_classifier_net_of_the_package_is_a_staged_net():
    classes = {name: getattr(nets, name) for name in nets.__all__}
    staged = {name for name, cls in classes.items() if isinstance(cls, type)}
    staged = {name for name in staged if issubclass(classes[name], StagedNet)}
    assert set(NETS) <= staged
    assert not issubclass(nets.VAE, StagedNet) and not issubclass(nets.Normalize, StagedNet)


@pytest.mark.parametrize("name", NETS)
def test_forward_is_the_head_of_the_features(name):
    net, images = net_and_images(name)
    with torch.no_grad():
        features = net.forward_features(images)
        assert features.dim() == 4 and features.shape[1] == net.feature_dim
        assert net.pool_features(features).shape == (2, net.feature_dim)
        assert torch.equal(net(images), net.forward_head(features))


@pytest.mark.parametrize("name", NETS)
def test_the_stages_run_in_parts_give_the_whole(name):
    net, images = net_and_images(name)
    assert net.num_stages == NETS[name][1]
    with torch.no_grad():
        stem = net.forward_stem(images)
        whole = net.forward_features(images)
        assert torch.equal(net.forward_stages(stem), whole)
        for k in range(net.num_stages + 1):
            hidden = net.forward_stages(stem, stop=k)
            assert torch.equal(net.forward_stages(hidden, start=k), whole)
        one_by_one = stem
        for k in range(net.num_stages):
            previous, one_by_one = one_by_one, net.forward_stages(one_by_one, k, k + 1)
            assert one_by_one.shape != previous.shape or not torch.equal(one_by_one, previous)
        assert torch.equal(one_by_one, whole)


def test_fast_cnn_scales_its_logits_in_the_head():
    torch.manual_seed(0)
    net = FastCNN(3, 5, widths=(4, 8, 8, 8), head_scale=0.25).eval()
    features = net.forward_features(torch.rand(2, 3, 16, 16))
    logits = net.head(net.pool_features(features))
    assert torch.equal(net.forward_head(features), logits * 0.25)


def module_names(net: torch.nn.Module) -> set[str]:
    return {key.rsplit(".", 1)[0] for key in net.state_dict()}


def test_plain_and_fast_cnn_keep_the_checkpoint_names():
    """Checkpoints of PlainCNN and FastCNN predate StagedNet: their keys must not move."""
    plain = {f"features.{i}.{j}" for i in range(3) for j in (0, 1)} | {"head"}
    assert module_names(PlainCNN(3, 10, width=4)) == plain
    conv_and_norm = (0, 2, 4, 6, 7, 9, 11, 13, 14, 16, 18, 20, 21)
    fast = {f"features.{i}" for i in conv_and_norm} | {"head"}
    assert module_names(FastCNN(3, 10, widths=(4, 8, 8, 8))) == fast
