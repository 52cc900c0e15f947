"""The MMD-VAE (Zhao et al., InfoVAE) of VarMixup, optionally trained adversarially (adv-VAE).

Objective (VarMixup paper, Eq. 11), per batch of images x in [0, 1]:

    loss = mean_i mean_pixels (dec(z_i) - x_i)^2  +  gamma * MMD^2({z_i}, {p_i}),

z_i ~ q(z|x_i) by reparameterization and p_i ~ N(0, I), as many as the batch. The adv-VAE
feeds x_i + delta_i instead, delta_i a PGD perturbation that maximizes the reconstruction
error of the clean image, and still reconstructs the clean x_i (docs/varmixup.md).
"""

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import save_image
from typing_extensions import override

from mixup_robust.atomic import atomic_file
from mixup_robust.attacks import InnerPGD, project_offset
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.nets.vae import VAE
from mixup_robust.precision import full_precision
from mixup_robust.run.last_checkpoint import LastCheckpoint
from mixup_robust.seeding import resolve_seed, seeded_torch_rng
from mixup_robust.training.optimization import (
    LRSchedulerCallable,
    OptimizerCallable,
    RunLengthSchedule,
    ScheduledModule,
    SchedulerInterval,
)


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """k(a_i, b_j) = exp(-||a_i - b_j||^2 / scale), shape (len(a), len(b)); scale = 2 sigma^2."""
    return torch.exp(-torch.cdist(a, b).pow(2) / scale)


def mmd(samples: torch.Tensor, prior: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Squared MMD between two samples with a Gaussian kernel (biased V-statistic, >= 0).

    Args:
        samples: (n, d) draws of q(z).
        prior: (m, d) draws of p(z).
        scale: 2 sigma^2 of the kernel; default d, half the expected squared distance of two
            N(0, I) draws, so the kernel neither saturates nor vanishes on the prior.
    """
    scale = float(samples.shape[1]) if scale is None else scale
    return (
        gaussian_kernel(samples, samples, scale).mean()
        + gaussian_kernel(prior, prior, scale).mean()
        - 2 * gaussian_kernel(samples, prior, scale).mean()
    )


class MMDVAE(ScheduledModule):
    """Trains a `VAE` with reconstruction + gamma x MMD(q(z) || N(0, I)) (Adam by default).

    The best checkpoint is the lowest `val/loss` (this module's own ModelCheckpoint replaces
    the CLI's default that monitors `val/acc`); `last.ckpt` is the last epoch, as for every run.

    Args:
        latent_dim: dimension of z.
        width: channels of the VAE's first convolution.
        gamma: weight of the MMD term against the per-pixel mean squared error.
        kernel_scale: 2 sigma^2 of the Gaussian kernel; None: latent_dim.
        optimizer: called with the VAE's parameters (see `ClassifierModule`); default
            torch's Adam, lr 1e-3.
        scheduler: the learning-rate schedule (see `ClassifierModule`); default None, constant.
        scheduler_interval: 'epoch' or 'step', when the scheduler steps.
        adversarial: train the adv-VAE on PGD-perturbed inputs.
        eps: L-infinity budget of the perturbation, pixel units (a float or "8/255").
        step_size: PGD step, pixel units.
        steps: PGD steps (random start in the eps-ball).
        sample_pairs: latent interpolations drawn in each validation PNG.
        num_classes: unused (linked by the CLI from the data).
        image_shape: (C, H, W) of the images (linked by the CLI from the data).
        mean: unused: the VAE maps [0, 1] to [-1, 1] itself (linked by the CLI).
        std: unused (linked by the CLI).
        seed: seed of the PGD random starts and the prior draws of validation.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        width: int = 32,
        gamma: float = 1.0,
        kernel_scale: float | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | RunLengthSchedule | None = None,
        scheduler_interval: SchedulerInterval = "epoch",
        adversarial: bool = False,
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        sample_pairs: int = 4,
        num_classes: int = 10,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.hparams.seed = resolve_seed(seed)  # None follows the run's seed
        self.set_optimization(optimizer, scheduler, scheduler_interval)
        channels, height, width_px = image_shape
        if height != width_px:
            raise ValueError(f"The VAE needs square images, got {height}x{width_px}.")
        self.vae = VAE(channels, height, latent_dim, width)
        self.eps = parse_budget(eps, "eps")
        self.step_size = parse_budget(step_size, "step_size")
        if steps < 0:
            raise ValueError(f"steps={steps}; the PGD of the adv-VAE needs steps >= 0.")
        # It perturbs an offset (the loop always did) and runs in the module's own mode.
        self.inner_attack = InnerPGD(
            self.eps, self.step_size, steps, bn_mode="train", update_bn_stats=True
        )
        self._preview: torch.Tensor | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction dec(E[z|x]) of images in [0, 1]."""
        return self.vae(images)

    def reconstruction_error(self, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-pixel mean squared error of dec(E[z|x]) against `target`, one value per image."""
        return (self.vae(images) - target).pow(2).flatten(1).mean(dim=1)

    def perturb(self, images: torch.Tensor) -> torch.Tensor:
        """PGD: x + delta, ||delta||_inf <= eps, in [0, 1], maximizing ||dec(E[z|x+d]) - x||^2."""
        eps = self.eps
        delta = torch.empty_like(images).uniform_(-eps, eps)
        delta = ((images + delta).clamp(0, 1) - images).detach()
        with self.inner_attack.mode(self):
            (delta,) = self.inner_attack.ascend(
                lambda offset: self.reconstruction_error(images + offset, images).sum(),
                [delta],
                [lambda offset: project_offset(images, offset, eps) - images],
            )
        return (images + delta).detach()

    def losses(self, inputs: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction, MMD and total loss of encoding `inputs` and decoding `target`."""
        mean, logvar = self.vae.encode(inputs)
        latents = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        reconstruction = (self.vae.decode(latents) - target).pow(2).mean()
        divergence = mmd(latents, torch.randn_like(latents), self.hparams.kernel_scale)
        loss = reconstruction + self.hparams.gamma * divergence
        return {"loss": loss, "reconstruction": reconstruction, "mmd": divergence}

    @override
    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images = batch[0]
        inputs = images
        if self.hparams.adversarial:
            keys = (self.global_rank, self.current_epoch, batch_idx)
            with (
                seeded_torch_rng(self.hparams.seed, *keys, device=images.device),
                full_precision(images.device),  # the attack in fp32 under bf16 training
            ):
                inputs = self.perturb(images)
        losses = self.losses(inputs, images)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True)
        return losses["loss"]

    @override
    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        images = batch[0]
        with seeded_torch_rng(self.hparams.seed, batch_idx, device=images.device):
            losses = self.losses(images, images)
        losses["mean_reconstruction"] = self.reconstruction_error(images, images).mean()
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)
        if batch_idx == 0:
            self._preview = images[: 2 * self.hparams.sample_pairs].detach()

    @override
    def on_validation_epoch_end(self) -> None:
        if self._preview is not None and not self.trainer.sanity_checking:
            self._write_preview(self._preview)
        self._preview = None

    @torch.no_grad()
    def preview_grid(self, images: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Inputs, their reconstructions, then one row of `steps` decodings per image pair.

        Pair k is (images[k], images[pairs + k]); its row walks lambda from 1 to 0 along
        lambda E[z|x_a] + (1 - lambda) E[z|x_b]. With 2 * pairs = steps each part is one row.
        """
        pairs = len(images) // 2
        mean = self.vae.encode(images)[0]
        ratio = torch.linspace(1, 0, steps, device=images.device)
        first, second = mean[:pairs], mean[pairs : 2 * pairs]
        path = ratio[None, :, None] * first[:, None] + (1 - ratio[None, :, None]) * second[:, None]
        rows = [images, self.vae.decode(mean), self.vae.decode(path.flatten(0, 1))]
        return torch.cat(rows).float().cpu()

    @rank_zero_only
    def _write_preview(self, images: torch.Tensor) -> None:
        grid = self.preview_grid(images)
        directory = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "samples"
        with atomic_file(directory / f"epoch{self.current_epoch:04d}.png") as file:
            save_image(grid, file, format="png", nrow=8, padding=1)

    def configure_callbacks(self) -> list[Checkpoint]:
        """The best checkpoint is the lowest val/loss (replaces the CLI's val/acc monitor).

        `LastCheckpoint` is returned too, after it, so that the trainer's first checkpoint
        callback (Lightning's `ckpt_path="best"`) stays the ModelCheckpoint.
        """
        best = ModelCheckpoint(
            monitor="val/loss", mode="min", save_last=False, filename="best-{epoch}-{step}"
        )
        return [best, LastCheckpoint()]
