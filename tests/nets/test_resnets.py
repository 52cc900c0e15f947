"""Tests for the PreAct-ResNet and WideResNet architectures (CPU, tiny batches)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mixup_robust.nets.preact_resnet import (
    PreActResNet,
    PreActResNet18,
    PreActResNet34,
    PreActResNet50,
)
from mixup_robust.nets.wide_resnet import WideResNet


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build_meta(factory, *args, **kwargs) -> nn.Module:
    """Build a (large) model on the meta device: counts parameters without allocating them."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


# Hand formulas, written from the architecture description (not from the code under test).
def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k  # all convs are bias-free


def _bn(c: int) -> int:
    return 2 * c  # affine weight + bias (running stats are buffers)


def _preact_count(cin: int, ncls: int, bottleneck: bool, blocks: list[int]) -> int:
    expansion = 4 if bottleneck else 1
    total = _conv(cin, 64, 3)
    inp = 64
    for i, n in enumerate(blocks):
        planes = 64 * 2**i
        out = planes * expansion
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            if bottleneck:
                total += _bn(inp) + _conv(inp, planes, 1) + _bn(planes) + _conv(planes, planes, 3)
                total += _bn(planes) + _conv(planes, out, 1)
            else:
                total += _bn(inp) + _conv(inp, planes, 3) + _bn(planes) + _conv(planes, planes, 3)
            if stride != 1 or inp != out:
                total += _conv(inp, out, 1)
            inp = out
    return total + _bn(inp) + inp * ncls + ncls


def _wrn_count(cin: int, ncls: int, depth: int, k: int) -> int:
    n = (depth - 4) // 6
    total = _conv(cin, 16, 3)
    inp = 16
    for width in (16 * k, 32 * k, 64 * k):
        for _ in range(n):
            total += _bn(inp) + _conv(inp, width, 3) + _bn(width) + _conv(width, width, 3)
            if inp != width:
                total += _conv(inp, width, 1)
            inp = width
    return total + _bn(inp) + inp * ncls + ncls


SMALL_NETS = {
    "preact18": lambda c, k: PreActResNet18(c, k),
    "preact_bottleneck_tiny": lambda c, k: PreActResNet(
        c, k, block="bottleneck", num_blocks=[1, 1, 1, 1], base_width=8
    ),
    "wrn10_1": lambda c, k: WideResNet(c, k, depth=10, widen_factor=1),
    "wrn16_2_dropout": lambda c, k: WideResNet(c, k, depth=16, widen_factor=2, dropout=0.3),
}


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [8, 32, 64])
def test_output_shape(name: str, in_channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = SMALL_NETS[name](in_channels, 7)
    x = torch.randn(2, in_channels, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("factory", [PreActResNet34, PreActResNet50])
def test_deeper_preact_shapes(factory) -> None:
    model = factory(3, 10)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_gradients_reach_first_conv(name: str) -> None:
    torch.manual_seed(0)
    model = SMALL_NETS[name](3, 5)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 3]))
    loss.backward()
    assert isinstance(model.stem, nn.Conv2d)
    grad = model.stem.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0  # input gradients, needed for attacks


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_structure_contract(name: str) -> None:
    """forward == head(pooled features) == manual stem -> stages -> pool_features (StagedNet)."""
    torch.manual_seed(0)
    model = SMALL_NETS[name](3, 4).eval()
    x = torch.randn(2, 3, 16, 16)
    assert isinstance(model.stages, nn.ModuleList)
    assert isinstance(model.head, nn.Linear)
    assert model.head.out_features == 4
    with torch.no_grad():
        feats = model.pool_features(model.forward_features(x))
        assert feats.shape == (2, model.head.in_features) == (2, model.feature_dim)
        h = model.stem(x)
        for stage in model.stages:
            h = stage(h)
        manual = model.pool_features(h)
        torch.testing.assert_close(manual, feats)
        torch.testing.assert_close(model(x), model.head(feats))
        assert (feats >= 0).all()  # pooled after the final ReLU


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_eval_is_deterministic(name: str) -> None:
    torch.manual_seed(0)
    model = SMALL_NETS[name](3, 10)
    model.train()
    model(torch.randn(4, 3, 16, 16))  # update BN running stats once
    model.eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        a, b = model(x), model(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dropout_active_only_in_training() -> None:
    torch.manual_seed(0)
    model = WideResNet(3, 10, depth=10, widen_factor=1, dropout=0.5)
    x = torch.randn(2, 3, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("factory", "bottleneck", "blocks", "expected"),
    [
        # 11,171,146 of the no-final-BN reference layout + 1,024 for the final BN(512).
        (PreActResNet18, False, [2, 2, 2, 2], 11_172_170),
        (PreActResNet34, False, [3, 4, 6, 3], 21_280_330),
        (PreActResNet50, True, [3, 4, 6, 3], 23_513_162),
    ],
)
def test_preact_param_counts(factory, bottleneck: bool, blocks: list[int], expected: int) -> None:
    assert _preact_count(3, 10, bottleneck, blocks) == expected
    assert _n_params(_build_meta(factory, 3, 10)) == expected
    # Other input channels / class counts follow the same formula.
    assert _n_params(_build_meta(factory, 1, 100)) == _preact_count(1, 100, bottleneck, blocks)


def test_preact18_minus_final_bn_matches_reference_figure() -> None:
    model = _build_meta(PreActResNet18, 3, 10)
    assert _n_params(model) - _n_params(model.final_bn) == 11_171_146


@pytest.mark.parametrize(
    ("depth", "k", "expected"),
    [(28, 10, 36_479_194), (34, 10, 46_160_474), (16, 4, 2_748_890)],
)
def test_wrn_param_counts(depth: int, k: int, expected: int) -> None:
    assert _wrn_count(3, 10, depth, k) == expected
    model = _build_meta(WideResNet, 3, 10, depth=depth, widen_factor=k)
    assert _n_params(model) == expected
    assert _n_params(_build_meta(WideResNet, 1, 100, depth=depth, widen_factor=k)) == _wrn_count(
        1, 100, depth, k
    )


@pytest.mark.parametrize("depth", [0, 4, 20, 27, 33])
def test_wrn_invalid_depth(depth: int) -> None:
    with pytest.raises(ValueError, match=r"6n \+ 4") as excinfo:
        WideResNet(3, 10, depth=depth)
    msg = str(excinfo.value)
    assert f"depth={depth}" in msg
    assert "28" in msg and "34" in msg  # lists valid depths


def test_positional_signature() -> None:
    wrn = WideResNet(1, 3, 10, 1, 0.0)
    assert wrn.stem.in_channels == 1 and wrn.head.out_features == 3
    net = PreActResNet18(1, 3)
    assert net.stem.in_channels == 1 and net.head.out_features == 3


def test_invalid_preact_options() -> None:
    with pytest.raises(ValueError, match="block"):
        PreActResNet(3, 10, block="wide")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_blocks"):
        PreActResNet(3, 10, num_blocks=[])
