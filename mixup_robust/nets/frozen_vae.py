"""The frozen VAE of an MMDVAE checkpoint, for VarMixup and VarERM (training) and VarMI (defenses).

It lives in `nets`, the one room that both `training` and `defenses` may import.
"""

from collections.abc import Sequence

from mixup_robust.nets.vae import VAE, ResizingVAE, adapt_vae, load_vae


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
