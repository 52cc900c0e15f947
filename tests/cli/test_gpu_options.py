"""The GPU options on CPU: channels_last, compile, bf16-mixed (attacks fp32), device_resident."""

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar

from mixup_robust.attacks import InnerPGD
from mixup_robust.data import DigitsDataModule
from mixup_robust.data.device_resident import check_fits_on_device
from mixup_robust.nets import SmallCNN
from mixup_robust.training import (
    ERM,
    AdversariallyOptimizedMixup,
    InterpolatedAT,
    Mixup,
    OneCycleSchedule,
    ThrottledProgressBar,
)
from mixup_robust.training.adversarial_training import cross_entropy_loss
from tests.helpers.cli import CONF, run_cli
from tests.helpers.training import tiny_module


def tiny(**kwargs) -> ERM:
    return tiny_module(ERM, **kwargs)


def images_and_labels(size: int = 8):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(size, 1, 8, 8, generator=generator), torch.arange(size) % 4


def test_channels_last_stores_weights_nhwc_and_keeps_the_logits():
    plain, fast = tiny().eval(), tiny(channels_last=True).eval()
    fast.configure_model()
    conv = fast.classifier[1].stages[1][0][0].weight  # 32 input channels
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    images, _ = images_and_labels()
    assert torch.allclose(fast(images), plain(images), atol=1e-5)


def test_compile_keeps_the_checkpoint_keys_and_the_logits():
    plain, compiled = tiny().eval(), tiny(compile=True, compile_backend="eager").eval()
    compiled.configure_model()
    compiled.configure_model()  # idempotent: Lightning may call it for fit and test
    assert compiled.state_dict().keys() == plain.state_dict().keys()
    images, _ = images_and_labels()
    assert torch.allclose(compiled(images), plain(images), atol=1e-6)


def test_compile_is_refused_before_compute_when_it_cannot_work(monkeypatch):
    with pytest.raises(ValueError, match=r"not a torch.compile backend"):
        tiny(compile=True, compile_backend="no-such-backend").configure_model()
    monkeypatch.setattr("mixup_robust.training.base.shutil.which", lambda name: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="C\\+\\+ compiler"):
        tiny(compile=True).configure_model()


def test_training_attack_stays_fp32_under_bf16_autocast():
    """Under the bf16 autocast of precision 'bf16-mixed' the inner PGD is the fp32 one."""
    model = tiny().classifier.eval()
    images, labels = images_and_labels()
    attack = InnerPGD(eps=8 / 255, step_size=2 / 255, steps=5)
    reference = attack(model, images, cross_entropy_loss(labels), np.random.default_rng(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = attack(model, images, cross_entropy_loss(labels), np.random.default_rng(1))
        assert model(images).dtype == torch.bfloat16  # autocast is really on around it
    assert torch.equal(under_autocast, reference)


@pytest.mark.parametrize("method", [Mixup, InterpolatedAT])
def test_bf16_mixed_training_runs_on_cpu(method, tmp_path):
    data = DigitsDataModule(batch_size=32)
    module = method(
        SmallCNN, num_classes=10, image_shape=(1, 8, 8), scheduler=OneCycleSchedule(),
        scheduler_interval="step", channels_last=True,
        **({"steps": 2} if method is InterpolatedAT else {}),
    )  # fmt: skip
    before = module.classifier[1].head.weight.detach().clone()
    trainer = L.Trainer(
        accelerator="cpu", precision="bf16-mixed", max_steps=4, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
        inference_mode=False,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    after = module.classifier[1].head.weight
    assert after.dtype == torch.float32 and not torch.equal(before, after)


def test_evaluation_refuses_reduced_precision(digits_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="precision: 32-true"):
        run_cli(
            "test", "--config", CONF / "evaluate.yaml",
            "--model.init_args.checkpoint", digits_checkpoint,
            "--model.init_args.output_dir", tmp_path / "results",
            "--trainer.default_root_dir", tmp_path, "--trainer.precision", "bf16-mixed",
        )  # fmt: skip
    assert not (tmp_path / "results").exists()


def batches_of_two_epochs(data: DigitsDataModule) -> list[tuple[torch.Tensor, ...]]:
    loader = data.train_dataloader()
    batches = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        batches += list(loader)
    return batches


def test_device_resident_batches_equal_the_host_batches():
    host = DigitsDataModule(batch_size=50, seed=3)
    resident = DigitsDataModule(batch_size=50, seed=3, device_resident=True)
    host.setup("fit")
    resident.setup("fit")
    expected, found = batches_of_two_epochs(host), batches_of_two_epochs(resident)
    assert len(found) == len(expected) == 2 * (len(host.split_indices["train"]) // 50)
    for (a_images, a_labels, a_index), (b_images, b_labels, b_index) in zip(
        expected, found, strict=True
    ):
        assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)
        assert torch.equal(a_index, b_index)
    assert not torch.equal(expected[0][2], expected[len(expected) // 2][2])  # epochs differ


def test_device_resident_fit_gives_the_same_weights(tmp_path):
    weights = []
    for resident in (False, True):
        torch.manual_seed(0)
        module = Mixup(SmallCNN, num_classes=10, image_shape=(1, 8, 8))
        trainer = L.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, default_root_dir=tmp_path, inference_mode=False,
        )  # fmt: skip
        trainer.fit(module, datamodule=DigitsDataModule(batch_size=64, device_resident=resident))
        weights.append(module.state_dict())
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_device_resident_refusals(monkeypatch):
    with pytest.raises(ValueError, match="num_workers: 0"):
        DigitsDataModule(device_resident=True, num_workers=2)
    images = torch.zeros(1000, 3, 32, 32, dtype=torch.uint8)  # 3 MB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (4 * 2**20, 80 * 2**30))
    with pytest.raises(ValueError, match="device_resident: false"):
        check_fits_on_device(images, torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (70 * 2**30, 80 * 2**30))
    check_fits_on_device(images, torch.device("cuda"))


@pytest.mark.parametrize(
    ("bar", "most_reads"), [(RichProgressBar, None), (ThrottledProgressBar, 4)]
)
def test_throttled_progress_bar_reads_the_metrics_every_few_steps(bar, most_reads, tmp_path):
    """Each read of the metrics is a host-device sync on a GPU; plain rich reads every step."""
    progress = bar(metrics_every=3) if bar is ThrottledProgressBar else bar()
    reads = []
    original = progress.get_metrics
    progress.get_metrics = lambda trainer, module: (
        reads.append(trainer.global_step) or original(trainer, module)
    )
    trainer = L.Trainer(
        accelerator="cpu", max_steps=9, logger=False, enable_checkpointing=False,
        callbacks=[progress], default_root_dir=tmp_path, inference_mode=False,
    )  # fmt: skip
    module = ERM(SmallCNN, num_classes=10, image_shape=(1, 8, 8))
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=32, val_size=0))
    steps_read = [step for step in reads if step < 9]
    if most_reads is None:
        assert len(steps_read) >= 8  # after every step
    else:
        assert steps_read == [3, 6] and len(reads) <= most_reads


class StopAfterFirstEpoch(Callback):
    """Stops the run at the end of its first epoch, as a job killed at an epoch boundary."""

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        trainer.should_stop = True


def fit_two_epochs(root, *callbacks, ckpt_path=None) -> dict:
    """Mixup with the fast-path options on the digits, max_epochs 2; returns the checkpoint."""
    torch.manual_seed(0)
    module = Mixup(
        SmallCNN, num_classes=10, image_shape=(1, 8, 8), scheduler=OneCycleSchedule(),
        scheduler_interval="step", channels_last=True,
    )  # fmt: skip
    checkpoint = ModelCheckpoint(dirpath=root, save_last=True)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2, logger=False, callbacks=[checkpoint, *callbacks],
        enable_progress_bar=False, default_root_dir=root, inference_mode=False,
    )  # fmt: skip
    data = DigitsDataModule(batch_size=64, val_size=0.1, device_resident=True)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=False)
    return torch.load(
        root / "last.ckpt", weights_only=False
    )  # our own file: hparams hold the net class


@pytest.mark.slow
def test_resume_is_exact_with_onecycle_and_device_resident(tmp_path):
    """1 epoch, interrupted, then resumed == 2 straight epochs, with the fast-path options."""
    straight = fit_two_epochs(tmp_path / "straight")
    first = fit_two_epochs(tmp_path / "halves", StopAfterFirstEpoch())
    assert first["epoch"] == 0
    resumed = fit_two_epochs(tmp_path / "halves", ckpt_path=tmp_path / "halves" / "last.ckpt")
    for name in straight["state_dict"]:
        assert torch.equal(straight["state_dict"][name], resumed["state_dict"][name]), name
    steps = [c["lr_schedulers"][0]["last_epoch"] for c in (first, straight, resumed)]
    assert steps[1] == steps[2] == 2 * steps[0]  # stepped per optimizer step, resumed mid-cycle
    first_head = first["state_dict"]["classifier.1.head.weight"]
    assert not torch.equal(first_head, resumed["state_dict"]["classifier.1.head.weight"])


def test_aomixup_ascent_stays_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    module = AdversariallyOptimizedMixup(
        SmallCNN, num_classes=4, image_shape=(1, 8, 8), mean=(0.5,), std=(0.25,), steps=3
    )
    images, labels = images_and_labels()
    pairs = module.pair_batch(images, labels, np.random.default_rng(0))
    reference = module.maximize(pairs, np.random.default_rng(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = module.maximize(pairs, np.random.default_rng(1))
    assert torch.equal(under_autocast.images, reference.images)
    assert torch.equal(under_autocast.ratio, reference.ratio)
