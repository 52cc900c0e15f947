"""The MI paper's network and training settings (official code: P2333/Mixup-Inference)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.nets import MIResNet50
from mixup_robust.training import AdversarialTraining, InterpolatedAT
from mixup_robust.training.adversarial_training import cross_entropy_loss
from tests.helpers.training import tiny_batch, tiny_module


@pytest.mark.parametrize(("classes", "count"), [(10, 4_752_586), (100, 4_775_716)])
def test_mi_resnet50_has_the_official_parameter_count(classes, count):
    # Counted from Torture/Models/resnet_3layer.py `resnet50` of the official code.
    net = MIResNet50(3, classes)
    assert sum(p.numel() for p in net.parameters()) == count


def test_mi_resnet50_shape_three_stages_of_five_bottlenecks():
    net = MIResNet50(3, 10).eval()
    assert [len(stage) for stage in net.stages] == [5, 5, 5]
    assert net.stem[0].kernel_size == (5, 5) and net.feature_dim == 256
    h = net.stem(torch.rand(2, 3, 32, 32))
    sides = []
    for stage in net.stages:
        h = stage(h)
        sides.append((h.shape[1], h.shape[2]))
    assert sides == [(64, 32), (128, 16), (256, 8)]
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


ATTACK = {"eps": 32 / 255, "step_size": 8 / 255, "steps": 3}


def test_at_can_attack_the_predicted_labels_as_the_official_code():
    images, labels = tiny_batch()
    at = tiny_module(AdversarialTraining, attack_labels="predicted", **ATTACK).eval()
    predicted = at(images).argmax(1)
    assert not torch.equal(predicted, labels)
    adversarial = at.adversarial_examples(images, labels, np.random.default_rng(0))
    expected = at.inner_attack(
        at.classifier, images, cross_entropy_loss(predicted), np.random.default_rng(0)
    )
    assert torch.equal(adversarial, expected)
    with pytest.raises(ValueError, match="attack_labels"):
        tiny_module(AdversarialTraining, attack_labels="truth")


def test_at_half_clean_half_adversarial_is_the_mean_of_both_losses():
    images, labels = tiny_batch()
    at = tiny_module(AdversarialTraining, adversarial_fraction=0.5, **ATTACK).eval()
    adversarial = at.adversarial_examples(images, labels, np.random.default_rng(3))
    with torch.no_grad():
        expected = F.cross_entropy(at(images), labels) + F.cross_entropy(at(adversarial), labels)
        loss = at.training_loss(images, labels, np.random.default_rng(3))
    assert loss.item() == pytest.approx(expected.item() / 2, rel=1e-6)


def bn_running_means(model: nn.Module) -> list[torch.Tensor]:
    return [b.clone() for name, b in model.named_buffers() if name.endswith("running_mean")]


def test_iat_joint_forward_normalizes_both_halves_as_one_batch():
    images, labels = tiny_batch()
    joint = tiny_module(InterpolatedAT, joint_forward=True, share_mixing=False, **ATTACK).train()
    separate = tiny_module(
        InterpolatedAT, joint_forward=False, share_mixing=False, **ATTACK
    ).train()
    separate.load_state_dict(joint.state_dict())
    rng = np.random.default_rng
    joint_loss = joint.training_loss(images, labels, rng(4))
    separate_loss = separate.training_loss(images, labels, rng(4))
    # Same draws, same adversarial examples: only batch norm's batch differs.
    assert joint_loss.item() != pytest.approx(separate_loss.item(), rel=1e-4)
    # The joint loss is the mean of the halves' losses under one forward pass of both.
    replay = tiny_module(InterpolatedAT, joint_forward=True, share_mixing=False, **ATTACK).train()
    generator = rng(4)
    clean_mixing = replay.draw_mixing(len(images), images.device, generator)
    adversarial = replay.adversarial_examples(images, labels, generator)
    adversarial_mixing = replay.draw_mixing(len(images), images.device, generator)
    clean, clean_targets = replay.mixed_batch(images, labels, clean_mixing)
    mixed_adv, adv_targets = replay.mixed_batch(adversarial, labels, adversarial_mixing)
    log_probs = F.log_softmax(replay(torch.cat([clean, mixed_adv])), dim=1)
    targets = torch.cat([clean_targets, adv_targets])
    expected = -(targets * log_probs).sum(dim=1).mean()
    assert joint_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # One forward pass updates batch norm's running statistics once, not twice.
    assert int(joint.classifier[1].stem[1].num_batches_tracked) == 1
    assert int(separate.classifier[1].stem[1].num_batches_tracked) == 2
