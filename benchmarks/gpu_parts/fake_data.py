"""A tiny CIFAR-10 look-alike zip for the dry run where the real zip is absent.

The layout is the shared `cifar10-jpeg.zip`'s (`<top>/train/<class>/NNNN.<ext>`,
`<top>/test/<class>/NNNN.<ext>`, ten classes, 32x32 RGB), so the recipe part reads it
through the same `ImageFolderDataModule` code path; the pixels are seeded noise with a little
class signal, so training moves but accuracies mean nothing.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")  # fmt: skip


def fake_cifar_zip(path: Path, train_per_class: int = 12, test_per_class: int = 12) -> Path:
    """Writes the look-alike zip (JPEG files, as the real one) to `path`; returns `path`."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for label, name in enumerate(CLASSES):
                for number in range(count):
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    pixels[..., label % 3] //= 4  # a little class signal
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
                    archive.writestr(f"cifar10-jpeg/{split}/{name}/{number:04d}.jpg",
                                     buffer.getvalue())  # fmt: skip
    return path
