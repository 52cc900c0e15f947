"""The VAE of an MMDVAE training checkpoint: `load_vae`, and `FrozenVAE` for its users.

VarMixup and VarERM (training) and VarMI (defenses) read their VAE through `FrozenVAE`.
"""

from collections.abc import Sequence
from pathlib import Path

from mixup_robust.checkpoints.file import read_checkpoint
from mixup_robust.nets.vae import VAE, ResizingVAE, adapt_vae


def load_vae(path: str | Path, image_shape: Sequence[int] | None = None) -> VAE:
    """The frozen VAE (eval mode, no gradients to its weights) of an MMDVAE training checkpoint.

    Args:
        path: a `.ckpt` written by `cli.py fit` with `mixup_robust.training.MMDVAE`.
        image_shape: if given, the (C, H, W) the VAE must have been trained on; None leaves
            the decision to the caller (e.g. `adapt_vae`, which can resize).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not an MMDVAE checkpoint, or its VAE is not for `image_shape`.
    """
    file = Path(path)
    hparams, state = read_checkpoint(
        file,
        f"No VAE checkpoint at {file}. Train one first (python cli.py fit --config "
        "configs/<data>/vae.yaml) and pass <run>/checkpoints/last.ckpt as vae_ckpt.",
    )
    needed = ("image_shape", "latent_dim", "width")
    has_vae = any(key.startswith("vae.encoder.") for key in state)
    if not has_vae or any(key not in hparams for key in needed):
        written_by = hparams.get("_class_path", "an unknown writer")
        raise ValueError(
            f"{file} is not an MMDVAE checkpoint (it was written by {written_by}). vae_ckpt must "
            "be a checkpoint of `cli.py fit` with mixup_robust.training.MMDVAE "
            "(configs/<data>/vae.yaml), not a classifier's."
        )
    channels, height, width_px = (int(v) for v in hparams["image_shape"])
    if height != width_px:
        raise ValueError(f"{file}: the VAE needs square images, not {height}x{width_px}.")
    if image_shape is not None and tuple(int(v) for v in image_shape) != (channels, height, height):
        raise ValueError(
            f"The VAE of {file} was trained on images {(channels, height, height)} but "
            f"{tuple(image_shape)} were asked for; train a VAE on this data set, or let the "
            "caller resize (resize: true)."
        )
    vae = VAE(channels, height, int(hparams["latent_dim"]), int(hparams["width"]))
    vae.load_state_dict({k[len("vae.") :]: v for k, v in state.items() if k.startswith("vae.")})
    return vae.eval().requires_grad_(False)


class FrozenVAE:
    """The VAE of `checkpoint`: read once, frozen, adapted to the data's image shape.

    Not an `nn.Module`: its owner keeps it as a plain attribute, so the VAE is not part of
    the owner's parameters, state_dict or train/eval switching unless the owner registers
    what `adapted` returns.

    Args:
        checkpoint: the `MMDVAE` training checkpoint (the owner's `vae_ckpt`).
        resize: allow a VAE trained at another resolution (`adapt_vae`).
        source: how errors name the checkpoint, e.g. 'vae_ckpt' or 'VarMI vae_ckpt'.
    """

    def __init__(self, checkpoint: str, resize: bool = True, source: str = "vae_ckpt") -> None:
        self.checkpoint, self.resize, self.source = checkpoint, resize, source
        self._loaded: VAE | None = None
        self._adapted: tuple[tuple[int, ...], VAE | ResizingVAE] | None = None

    def load(self) -> VAE:
        """The VAE as trained (eval mode, no gradients), read from the file on first use.

        Raises:
            FileNotFoundError, ValueError: as `load_vae`.
        """
        if self._loaded is None:
            self._loaded = load_vae(self.checkpoint)
        return self._loaded

    def adapted(self, image_shape: Sequence[int]) -> VAE | ResizingVAE:
        """The VAE for images of `image_shape` (C, H, W): itself, or resized to and from it.

        Built once per shape; every call for that shape returns the same module (on whatever
        device the caller moved it to).

        Raises:
            ValueError: the checkpoint is no VAE's, or its VAE does not fit `image_shape`
                (message prefixed by `source` and the checkpoint's path).
        """
        shape = tuple(int(v) for v in image_shape)
        if self._adapted is None or self._adapted[0] != shape:
            try:
                vae = adapt_vae(self.load(), shape, self.resize)
            except ValueError as error:
                raise ValueError(f"{self.source} {self.checkpoint}: {error}") from error
            self._adapted = (shape, vae)
        return self._adapted[1]
