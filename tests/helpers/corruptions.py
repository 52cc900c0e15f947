"""A fake CIFAR-10-C: two corruptions whose every pixel says whether a pixel reader is right."""

from pathlib import Path

import numpy as np

N = 4  # images per severity
CORRUPTIONS = ("snow", "gaussian_noise")  # listed back in benchmark order
LABELS = np.array([(i + s) % 10 for s in range(5) for i in range(N)], dtype=np.int64)


def correctness(corruption: str) -> np.ndarray:
    """Which images (5, N) the pixel-reading classifier below gets right, fixed per corruption."""
    rng = np.random.default_rng(len(corruption))
    return rng.random((5, N)) < 0.6


def fake_cifar_c(root: Path, shape: tuple[int, int, int] = (3, 4, 4)) -> Path:
    """Images whose every pixel is the label (right) or label + 1 (wrong), plus a marker."""
    root.mkdir(parents=True)
    channels, height, width = shape
    np.save(root / "labels.npy", LABELS.astype(np.uint8))  # CIFAR-10-C ships uint8 labels
    for number, name in enumerate(CORRUPTIONS):
        value = LABELS + ~correctness(name).reshape(-1) + 20 * number
        images = np.broadcast_to(value[:, None, None, None], (5 * N, height, width, channels))
        np.save(root / f"{name}.npy", np.ascontiguousarray(images).astype(np.uint8))
    return root
