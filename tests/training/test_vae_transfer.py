"""VAE transfer (VarMixup paper, Table 3): a VAE trained at one resolution used at another."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mixup_robust.checkpoints import load_vae
from mixup_robust.checkpoints import vae as frozen_vae
from mixup_robust.checkpoints.vae import FrozenVAE
from mixup_robust.defenses import ClassPool, VarMixupInference
from mixup_robust.nets.vae import ResizingVAE, adapt_vae, resize_images
from mixup_robust.training import MMDVAE, VarERM, VarMixup
from tests.helpers.training import tiny_net

PARTNERS = torch.tensor([5, 4, 3, 2, 1, 0])


def save_vae(directory: Path, shape: tuple[int, int, int]) -> Path:
    """An MMDVAE checkpoint trained 0 steps (random weights), as `cli.py fit` writes it."""
    torch.manual_seed(0)
    module = MMDVAE(latent_dim=4, width=4, image_shape=shape)
    hparams = {**module.hparams, "_class_path": "mixup_robust.training.MMDVAE"}
    hparams["optimizer"] = {"class_path": "torch.optim.Adam"}  # the CLI writes specs, not classes
    path = directory / f"vae_{shape[1]}.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, path)
    return path


def images(shape: tuple[int, int, int], batch: int = 6) -> torch.Tensor:
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("vae_size", "data_size"), [(16, 8), (8, 16)])
def test_varmixup_and_varerm_with_a_vae_of_another_size(tmp_path, vae_size, data_size):
    vae_ckpt = str(save_vae(tmp_path, (1, vae_size, vae_size)))
    shape = (1, data_size, data_size)
    kwargs = {"num_classes": 3, "image_shape": shape}
    mixup, erm = VarMixup(tiny_net, vae_ckpt, **kwargs), VarERM(tiny_net, vae_ckpt, **kwargs)
    mixup.setup("fit")
    assert isinstance(mixup.frozen_vae(torch.device("cpu")), ResizingVAE)
    x, labels = images(shape), torch.arange(6) % 3
    mixed, _ = mixup.mix_with(x, labels, torch.rand(6), PARTNERS)
    assert mixed.shape == x.shape and 0 <= mixed.min() and mixed.max() <= 1
    at_one, _ = mixup.mix_with(x, labels, torch.ones(6), PARTNERS)
    reconstruction = erm.decode(erm.latent_means(x))
    assert torch.equal(at_one, reconstruction)
    assert mixup.latent_means(x).shape == (6, 4)
    assert erm.training_loss(x, labels, np.random.default_rng(0)).isfinite()


def test_resize_off_or_another_channel_count_raise_clear_errors(tmp_path):
    vae_ckpt = str(save_vae(tmp_path, (1, 16, 16)))
    module = VarMixup(tiny_net, vae_ckpt, num_classes=3, image_shape=(1, 8, 8), resize=False)
    with pytest.raises(ValueError, match="set resize: true"):
        module.setup("fit")
    module = VarERM(tiny_net, vae_ckpt, num_classes=3, image_shape=(3, 16, 16))
    with pytest.raises(ValueError, match="channels"):
        module.setup("fit")
    with pytest.raises(ValueError, match="trained on images"):
        load_vae(vae_ckpt, image_shape=(1, 8, 8))
    assert load_vae(vae_ckpt, image_shape=(1, 16, 16)).image_size == 16


def test_a_vae_of_the_data_size_is_used_as_it_is(tmp_path):
    vae = load_vae(save_vae(tmp_path, (1, 8, 8)))
    assert adapt_vae(vae, (1, 8, 8), resize=True) is vae
    assert adapt_vae(vae, (1, 8, 8), resize=False) is vae


def test_resizing_is_bilinear_antialiased_when_shrinking_and_keeps_the_range():
    x = images((3, 16, 16), batch=2)
    small = resize_images(x, (8, 8))
    expected = nn.functional.interpolate(x, size=(8, 8), mode="bilinear", antialias=True)
    torch.testing.assert_close(small, expected.clamp(0, 1))
    large = resize_images(small, (16, 16))
    torch.testing.assert_close(large, nn.functional.interpolate(small, size=(16, 16),
                                                                mode="bilinear"))  # fmt: skip
    assert resize_images(x, (16, 16)) is x
    assert 0 <= large.min() and large.max() <= 1


def test_the_resizing_vae_is_differentiable_in_the_input(tmp_path):
    vae = adapt_vae(load_vae(save_vae(tmp_path, (1, 16, 16))), (1, 8, 8))
    x = images((1, 8, 8)).requires_grad_(True)
    (gradient,) = torch.autograd.grad(vae(x).sum(), x)
    assert gradient.abs().sum() > 0


@pytest.mark.parametrize("resize", [True, False])
def test_varmi_with_a_vae_of_another_size(tmp_path, resize):
    vae_ckpt = str(save_vae(tmp_path, (1, 16, 16)))
    torch.manual_seed(0)
    pool = ClassPool(torch.randint(0, 256, (30, 1, 8, 8), dtype=torch.uint8),
                     torch.arange(30) % 3, num_classes=3)  # fmt: skip
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    defense = VarMixupInference(vae_ckpt, n_executions=4, chunk_size=7, resize=resize)
    if not resize:
        with pytest.raises(ValueError, match="set resize: true"):
            defense.bind(classifier, pool, seed=3)
        return
    defense.bind(classifier, pool, seed=3)
    x = images((1, 8, 8)).requires_grad_(True)
    log_probs = defense(x, torch.arange(6))
    assert log_probs.shape == (6, 3)
    (gradient,) = torch.autograd.grad(log_probs.sum(), x)
    assert gradient.abs().sum() > 0


def test_the_frozen_vae_is_read_once_and_adapted_once_per_shape(tmp_path, monkeypatch):
    vae_ckpt = str(save_vae(tmp_path, (1, 16, 16)))
    reads = []
    monkeypatch.setattr(frozen_vae, "load_vae", lambda path: reads.append(path) or load_vae(path))
    frozen = FrozenVAE(vae_ckpt, resize=True, source="VarMI vae_ckpt")
    resized = frozen.adapted((1, 8, 8))
    assert isinstance(resized, ResizingVAE) and frozen.adapted([1, 8, 8]) is resized
    assert frozen.adapted((1, 16, 16)) is frozen.load() is resized.vae
    assert reads == [vae_ckpt]
    assert not resized.training and not any(p.requires_grad for p in resized.parameters())
    with pytest.raises(ValueError, match=rf"^VarMI vae_ckpt {vae_ckpt}: .*set resize: true"):
        FrozenVAE(vae_ckpt, resize=False, source="VarMI vae_ckpt").adapted((1, 8, 8))
