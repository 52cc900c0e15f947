"""Training modules: what ERM and Mixup compute, schedules, validation under attack."""

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixup_robust.attacks import PGD
from mixup_robust.nets import SmallCNN
from mixup_robust.training import ERM, ClassifierSGD, CosineSchedule, Mixup


def tiny(method=Mixup, **kwargs):
    return method(
        SmallCNN, num_classes=4, image_shape=(1, 8, 8), mean=(0.5,), std=(0.25,), **kwargs
    )


def batch(size: int = 8):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(size, 1, 8, 8, generator=generator), torch.arange(size) % 4


def test_mixup_mixes_images_and_labels_by_the_same_per_sample_ratio():
    module = tiny(alpha=1.0)
    images, labels = batch()
    mixed, targets = module.mix_batch(images, labels, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    ratio = torch.from_numpy(rng.beta(1.0, 1.0, size=8)).float()
    partners = torch.from_numpy(rng.permutation(8))
    expected = ratio.view(-1, 1, 1, 1) * images + (1 - ratio.view(-1, 1, 1, 1)) * images[partners]
    assert torch.allclose(mixed, expected)
    assert torch.allclose(targets.sum(1), torch.ones(8))
    own = targets[torch.arange(8), labels]
    same = labels == labels[partners]
    assert torch.allclose(own[~same], ratio[~same]) and torch.allclose(
        own[same], torch.ones(8)[same]
    )
    assert len(set(ratio.tolist())) == 8  # one ratio per sample


def test_mixup_per_batch_ratio_and_alpha_zero_is_refused():
    images, labels = batch()
    _, targets = tiny(ratio_per="batch").mix_batch(images, labels, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    ratio = float(rng.beta(1.0, 1.0, size=1)[0])
    partners = torch.from_numpy(rng.permutation(8))
    differs = labels != labels[partners]
    own = targets[torch.arange(8), labels]
    assert differs.any() and torch.allclose(own[differs], torch.full_like(own[differs], ratio))
    # alpha <= 0 once meant "no mixing" and trained ERM silently; it is refused now.
    for alpha in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"alpha > 0.*ERM"):
            tiny(alpha=alpha)


def test_erm_loss_is_cross_entropy_and_mixup_loss_differs():
    images, labels = batch()
    torch.manual_seed(0)
    erm = tiny(ERM).eval()
    loss = erm.training_loss(images, labels, np.random.default_rng(0))
    assert torch.allclose(loss, F.cross_entropy(erm(images), labels))
    mixup = tiny(Mixup).eval()
    mixup.load_state_dict(erm.state_dict())
    assert not torch.allclose(mixup.training_loss(images, labels, np.random.default_rng(0)), loss)


def test_batch_rng_is_keyed_on_seed_epoch_and_batch():
    module = tiny(seed=5)
    draw = module.batch_rng(3).random()
    assert module.batch_rng(3).random() == draw
    assert module.batch_rng(4).random() != draw
    assert tiny(seed=6).batch_rng(3).random() != draw


@pytest.mark.parametrize(
    ("schedule", "epoch", "factor"),
    [("multistep", 2, 0.1), ("multistep", 1, 1.0), ("cosine", 2, 0.5), ("constant", 3, 1.0)],
)
def test_schedules(schedule, epoch, factor):
    scheduler = {
        "multistep": partial(torch.optim.lr_scheduler.MultiStepLR, milestones=(2,), gamma=0.1),
        "cosine": CosineSchedule(),
        "constant": None,
    }[schedule]
    module = tiny(optimizer=partial(ClassifierSGD, lr=0.2), scheduler=scheduler)
    module.trainer = type("T", (), {"max_epochs": 4})()  # cosine reads max_epochs
    configured = module.configure_optimizers()
    if isinstance(configured, dict):
        optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
        for _ in range(epoch):
            optimizer.step()
            scheduler.step()
    else:
        optimizer = configured
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * factor)


def test_validation_attack_needs_gradients_and_reports_robust_accuracy():
    torch.manual_seed(0)
    module = tiny(ERM, val_attack=PGD(eps="64/255", step_size="16/255", steps=5)).eval()
    images, labels = batch(16)
    # Make the labels the model's own predictions: clean accuracy 100%, robust below.
    labels = module(images).argmax(1)
    module.validation_step((images, labels, torch.arange(16)), 0)
    assert module.val_metrics.compute()["val/acc"] == 1.0
    assert module.val_robust_metrics.compute()["val/robust_acc"] < 1.0
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode: false"):
        module.validation_step((images, labels, torch.arange(16)), 0)


def test_adam_is_an_option_of_every_method_and_keeps_the_schedule():
    module = tiny(
        ERM, optimizer=partial(torch.optim.Adam, lr=1e-3, weight_decay=5e-4),
        scheduler=partial(torch.optim.lr_scheduler.MultiStepLR, milestones=(1,), gamma=0.1),
    )  # fmt: skip
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
