"""The layer split of every classifier net (`nets/staged.py`): `forward_to_layer` and
`forward_from_layer` compose to the plain forward, mixing at a layer changes only that layer
on, and a net that is no `StagedNet` is refused with the nets that are."""

from functools import partial

import pytest
import torch
from torch import nn

from mixup_robust.mixing import interpolate
from mixup_robust.nets import (
    FastCNN,
    MIResNet,
    PlainCNN,
    PreActResNet,
    SmallCNN,
    WideResNet,
    build_classifier,
)
from mixup_robust.nets.staged import forward_from_layer, forward_to_layer, mixable_layers

SHAPE = (3, 8, 8)
NETS = {
    "small_cnn": partial(SmallCNN, width=4),
    "preact_resnet18_tiny": partial(PreActResNet, num_blocks=(2, 2, 2, 2), base_width=4),
    "wrn_10_1": partial(WideResNet, depth=10, widen_factor=1),
    "mi_resnet_tiny": partial(MIResNet, num_blocks=(1, 2, 1), base_width=4),
    "plain_cnn": partial(PlainCNN, width=4),
}
# FastCNN's stem and stages are slices of one flat nn.Sequential (its checkpoint names), so it
# has no `stem` / `stages` modules to hook; it is split through the StagedNet methods alone.
SPLIT_NETS = {**NETS, "fast_cnn": partial(FastCNN, widths=(4, 8, 8, 8))}


def classifier_of(net) -> nn.Sequential:
    torch.manual_seed(0)
    return build_classifier(net, 3, SHAPE, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))


def batch(size: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(size, *SHAPE, generator=generator), torch.arange(size) % 3


@pytest.mark.parametrize("name", SPLIT_NETS)
def test_the_split_forward_with_lambda_one_is_the_plain_forward(name):
    classifier = classifier_of(SPLIT_NETS[name]).eval()
    images, _ = batch()
    partners = torch.tensor([5, 4, 3, 2, 1, 0])
    with torch.no_grad():
        plain = classifier(images)
        for layer in range(mixable_layers(classifier)):
            hidden = forward_to_layer(classifier, images, layer)
            mixed = interpolate(hidden, hidden[partners], torch.ones(6))
            torch.testing.assert_close(
                forward_from_layer(classifier, mixed, layer), plain, rtol=0, atol=0
            )


def test_mixable_layers_are_the_input_and_every_stage():
    assert mixable_layers(classifier_of(NETS["small_cnn"])) == 3
    assert mixable_layers(classifier_of(NETS["preact_resnet18_tiny"])) == 5
    assert mixable_layers(classifier_of(NETS["wrn_10_1"])) == 4
    assert mixable_layers(classifier_of(NETS["plain_cnn"])) == 4
    assert mixable_layers(classifier_of(SPLIT_NETS["fast_cnn"])) == 4


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_mixing_fast_cnn_at_a_layer_changes_its_logits(layer):
    classifier = classifier_of(SPLIT_NETS["fast_cnn"]).eval()
    images, _ = batch()
    partners = torch.tensor([5, 4, 3, 2, 1, 0])
    with torch.no_grad():
        hidden = forward_to_layer(classifier, images, layer)
        mixed = interpolate(hidden, hidden[partners], torch.full((6,), 0.3))
        logits = forward_from_layer(classifier, mixed, layer)
    assert logits.shape == (6, 3) and not torch.allclose(logits, classifier(images))


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_mixing_at_a_layer_changes_only_that_layer_on(name, layer):
    classifier = classifier_of(NETS[name]).train()
    net = classifier[1]
    watched = [net.stem, *net.stages]  # watched[k], k >= 1, outputs the hidden state of layer k
    images, _ = batch()
    ratio, partners = torch.full((6,), 0.3), torch.tensor([5, 4, 3, 2, 1, 0])

    def outputs(mix: bool) -> list[torch.Tensor]:
        seen: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o)) for m in watched]
        with torch.no_grad():
            hidden = forward_to_layer(classifier, images, layer)
            if mix:
                hidden = interpolate(hidden, hidden[partners], ratio)
            seen.append(forward_from_layer(classifier, hidden, layer))
        for hook in hooks:
            hook.remove()
        return seen

    plain, mixed = outputs(False), outputs(True)
    assert len(plain) == len(mixed) == len(watched) + 1
    untouched = layer + 1 if layer > 0 else 0  # stem .. stages[layer - 1] run before mixing
    for index, (a, b) in enumerate(zip(plain, mixed, strict=True)):
        if index < untouched:
            assert torch.equal(a, b)
        else:
            assert not torch.allclose(a, b)


def test_invalid_layer_in_the_split_and_unsplittable_nets_raise():
    classifier = classifier_of(NETS["wrn_10_1"])
    images, _ = batch()
    with pytest.raises(ValueError, match=r"layer must be in 0..3"):
        forward_to_layer(classifier, images, 4)
    with pytest.raises(ValueError, match=r"layer must be in 0..3"):
        forward_from_layer(classifier, images, -1)
    plain = nn.Sequential(nn.Identity(), nn.Sequential(nn.Flatten(), nn.Linear(192, 3)))
    with pytest.raises(TypeError, match="cannot be split"):
        mixable_layers(plain)


def test_a_net_that_only_looks_staged_is_refused_with_the_nets_that_work():
    """The contract is the StagedNet base, not attribute names that happen to match."""

    class LookAlike(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.stages = nn.Identity(), nn.ModuleList([nn.Identity()])
            self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(3, 3)

    classifier = nn.Sequential(nn.Identity(), LookAlike())
    with pytest.raises(TypeError, match="LookAlike cannot be split") as error:
        mixable_layers(classifier)
    for name in ("FastCNN", "MIResNet", "PlainCNN", "PreActResNet18", "SmallCNN", "WideResNet"):
        assert name in str(error.value)
    assert "StagedNet" in str(error.value)
