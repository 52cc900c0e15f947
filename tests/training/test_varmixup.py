"""VarMixup, VarERM, the MMD-VAE and VarMI: tiny CPU tests, plus one CLI run on the digits."""

import json
from functools import partial

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from mixup_robust.checkpoints import load_classifier, load_vae
from mixup_robust.defenses import ClassPool, VarMixupInference
from mixup_robust.mixing import interpolate, soft_targets
from mixup_robust.training import MMDVAE, ClassifierSGD, VarERM, VarMixup
from mixup_robust.training.vae import mmd
from tests.helpers.cli import CONF, last_checkpoint, resolved_config, run_cli
from tests.helpers.training import tiny_net

SHAPE = (1, 8, 8)


@pytest.fixture
def vae_ckpt(tmp_path):
    """An (untrained) MMDVAE checkpoint in the format `cli.py fit` writes."""
    torch.manual_seed(0)
    module = MMDVAE(latent_dim=4, width=4, image_shape=SHAPE)
    hparams = {**module.hparams, "_class_path": "mixup_robust.training.MMDVAE"}
    hparams["optimizer"] = {"class_path": "torch.optim.Adam"}  # the CLI writes specs, not classes
    path = tmp_path / "vae.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, path)
    return path


def images_and_labels(batch: int = 6):
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(batch, *SHAPE, generator=generator)
    return images, torch.arange(batch) % 3


def test_mmd_is_near_zero_on_the_prior_and_large_for_a_shifted_distribution():
    torch.manual_seed(0)
    prior, same = torch.randn(500, 8), torch.randn(500, 8)
    near = mmd(same, prior).item()
    far = mmd(torch.randn(500, 8) + 2.0, prior).item()
    assert 0 <= near < 0.01
    assert far > 0.2 and far > 30 * near


def test_varmixup_with_lambda_one_is_the_varerm_image(vae_ckpt):
    mixup = VarMixup(tiny_net, str(vae_ckpt), num_classes=3, image_shape=SHAPE)
    erm = VarERM(tiny_net, str(vae_ckpt), num_classes=3, image_shape=SHAPE)
    images, labels = images_and_labels()
    partners = torch.tensor([5, 4, 3, 2, 1, 0])
    mixed, targets = mixup.mix_with(images, labels, torch.ones(6), partners)
    assert torch.equal(mixed, erm.decode(erm.latent_means(images)))
    assert torch.equal(targets, nn.functional.one_hot(labels, 3).float())


def test_labels_are_mixed_by_the_latents_ratio(vae_ckpt):
    module = VarMixup(tiny_net, str(vae_ckpt), num_classes=3, image_shape=SHAPE)
    images, labels = images_and_labels()
    mixed, targets = module.mix_batch(images, labels, np.random.default_rng(7))
    ratio, partners = module.draw_pairs(images, np.random.default_rng(7))
    assert not torch.all(ratio == ratio[0])  # one lambda per sample
    latents = module.latent_means(images)
    expected = module.decode(interpolate(latents, latents[partners], ratio))
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(targets, soft_targets(labels, labels[partners], ratio, 3))
    assert mixed.shape == images.shape and 0 <= mixed.min() and mixed.max() <= 1


@pytest.mark.parametrize("method", [VarMixup, VarERM])
def test_the_vae_stays_frozen_while_the_classifier_trains(vae_ckpt, method):
    module = method(tiny_net, str(vae_ckpt), num_classes=3, image_shape=SHAPE, scheduler=None,
                    optimizer=partial(ClassifierSGD, lr=0.1))  # fmt: skip
    module.setup("fit")
    module.train()
    vae = module.frozen_vae(torch.device("cpu"))
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    classifier_before = [p.clone() for p in module.classifier.parameters()]
    optimizer = module.configure_optimizers()
    images, labels = images_and_labels()
    for step in range(3):
        optimizer.zero_grad()
        module.training_loss(images, labels, np.random.default_rng(step)).backward()
        optimizer.step()
    assert not vae.training and not any(p.requires_grad for p in vae.parameters())
    assert all(torch.equal(v, before[k]) for k, v in vae.state_dict().items())
    after = list(module.classifier.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(classifier_before, after, strict=True))
    assert not any("vae" in key for key in module.state_dict())
    assert not any(p is q for p in module.parameters() for q in vae.parameters())


def test_loading_something_else_than_a_vae_checkpoint_raises_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No VAE checkpoint"):
        load_vae(tmp_path / "missing.ckpt")
    classifier = tmp_path / "classifier.ckpt"
    state = {"classifier.1.head.weight": torch.zeros(3, 8)}
    hparams = {"_class_path": "mixup_robust.training.Mixup", "num_classes": 3}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, classifier)
    with pytest.raises(ValueError, match=r"not an MMDVAE checkpoint.*training.Mixup"):
        load_vae(classifier)
    module = VarMixup(tiny_net, str(classifier), num_classes=3, image_shape=SHAPE)
    with pytest.raises(ValueError, match="not an MMDVAE checkpoint"):
        module.setup("fit")


def bound_varmi(vae_ckpt, partner_label: str) -> VarMixupInference:
    torch.manual_seed(0)
    pool_images = torch.randint(0, 256, (30, *SHAPE), dtype=torch.uint8)
    pool = ClassPool(pool_images, torch.arange(30) % 3, num_classes=3)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    defense = VarMixupInference(str(vae_ckpt), partner_label, n_executions=5, chunk_size=7)
    return defense.bind(classifier, pool, seed=3)


@pytest.mark.parametrize("partner_label", ["other", "predicted"])
def test_varmi_partners_obey_the_pool_rule(vae_ckpt, partner_label):
    defense = bound_varmi(vae_ckpt, partner_label)
    images, _ = images_and_labels()
    predicted = defense.classifier(images).argmax(dim=1)
    classes = defense.pool.labels[defense.partners(predicted, torch.arange(6))]
    same = classes == predicted[:, None]
    assert same.all() if partner_label == "predicted" else not same.any()
    assert defense.name == ("VarMI-PL" if partner_label == "predicted" else "VarMI-OL")


def test_varmi_is_batched_keyed_and_differentiable(vae_ckpt):
    defense = bound_varmi(vae_ckpt, "other")
    images, _ = images_and_labels()
    images.requires_grad_(True)
    index = torch.arange(10, 16)
    per_execution = defense.execution_log_probs(images, index, torch.arange(5))
    assert per_execution.shape == (6, 5, 3)
    (gradient,) = torch.autograd.grad(per_execution.sum(), images)
    assert gradient.abs().sum() > 0  # through the encoder, the decoder and the classifier
    with torch.no_grad():
        alone = defense(images[2:3], index[2:3])
        together = defense(images, index)
        predicted = defense.classifier(images).argmax(dim=1)
        partners = defense.partners(predicted, index)
        copies = defense.mixed_log_probs(images[:, None].expand(-1, 5, -1, -1, -1), partners)
    torch.testing.assert_close(alone, together[2:3])
    torch.testing.assert_close(copies, per_execution.detach())
    torch.testing.assert_close(together.exp().sum(dim=1), torch.ones(6))


@pytest.mark.slow
def test_cli_trains_a_vae_then_varmixup_on_the_digits(tmp_path):
    common = ("--trainer.max_epochs", 2, "--trainer.limit_train_batches", 3,
              "--trainer.limit_val_batches", 1, "--trainer.check_val_every_n_epoch", 1)  # fmt: skip
    run_cli("fit", "--config", CONF / "vae.yaml", "--trainer.default_root_dir",
            tmp_path / "vae", "--model.init_args.adversarial", True,
            "--model.init_args.steps", 2, *common)  # fmt: skip
    vae_ckpt = last_checkpoint(tmp_path / "vae")
    run_dir = vae_ckpt.parents[1]
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == [
        "epoch0000.png", "epoch0001.png"]  # fmt: skip
    assert list(run_dir.glob("checkpoints/best-*.ckpt"))  # monitored val/loss, not val/acc
    assert load_vae(vae_ckpt).latent_dim == 16
    run_cli("fit", "--config", CONF / "varmixup.yaml",
            "--trainer.default_root_dir", tmp_path / "varmixup",
            "--model.init_args.vae_ckpt", vae_ckpt, *common)  # fmt: skip
    classifier, hparams = load_classifier(str(last_checkpoint(tmp_path / "varmixup")))
    assert hparams["_class_path"] == "mixup_robust.training.VarMixup"
    assert classifier(torch.rand(2, *SHAPE)).shape == (2, 10)
    # ... and the evaluation scores VarMI next to MI-OL in one table.
    config = resolved_config("test", CONF / "evaluate_varmi.yaml")
    config["model"]["init_args"]["checkpoint"] = str(last_checkpoint(tmp_path / "varmixup"))
    config["model"]["init_args"]["defenses"][2]["init_args"]["vae_ckpt"] = str(vae_ckpt)
    config["model"]["init_args"]["defenses"][2]["init_args"]["n_executions"] = 4
    config["data"]["init_args"]["test_subset_size"] = 20
    (tmp_path / "evaluate.yaml").write_text(yaml.safe_dump(config))
    run_cli("test", "--config", tmp_path / "evaluate.yaml", "--model.init_args.output_dir",
            tmp_path / "results", "--trainer.default_root_dir", tmp_path / "logs")  # fmt: skip
    records = json.loads((tmp_path / "results" / "results.json").read_text())
    defenses = {r["defense"] for r in records if r["attack"] == "PGD-10"}
    assert defenses == {"none", "MI-OL", "VarMI-OL"} and all(r["n"] == 20 for r in records)
