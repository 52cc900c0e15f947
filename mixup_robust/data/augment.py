"""Train-time augmentation on whole batches, on the device the batch already lives on."""

import torch
import torch.nn.functional as F


def random_crop(
    images: torch.Tensor, padding: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero-pads each image by `padding` pixels and crops it back at a random offset.

    Args:
        images: float (B, C, H, W).
        padding: pixels of zero padding on each side; 0 returns the input unchanged.
        generator: source of the per-sample offsets (on the images' device).

    Returns:
        (B, C, H, W), each image shifted by its own offset in [-padding, padding].
    """
    if padding == 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    rows = (top[:, None] + torch.arange(height, device=device))[:, :, None]  # (B, H, 1)
    cols = (left[:, None] + torch.arange(width, device=device))[:, None, :]  # (B, 1, W)
    batch_index = torch.arange(batch, device=device)[:, None, None]
    # Advanced indexing gathers every crop at once: result is (B, H, W, C).
    return padded.permute(0, 2, 3, 1)[batch_index, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_horizontal_flip(
    images: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirrors each image left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def augment_uint8(
    images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """uint8 images through random crop (and flip); exact, since both only move pixels."""
    augmented = random_crop(images.float(), padding, generator)
    if flip:
        augmented = random_horizontal_flip(augmented, generator)
    return augmented.to(torch.uint8)
