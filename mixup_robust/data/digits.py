"""scikit-learn's bundled handwritten digits: the embedded default that needs no download."""

from typing import Literal

import torch
from sklearn.datasets import load_digits
from typing_extensions import override

from mixup_robust.data.base import Arrays, InMemoryDataModule

# The digits have no official split: a fixed, stratified 80/20 split that does not depend on
# the run's seed keeps the test set the same across runs.
_SPLIT_SEED = 20_200_416
_TEST_FRACTION = 0.2


class DigitsDataModule(InMemoryDataModule):
    """1,797 grayscale 8x8 digits (0-16 intensities scaled to 0-255), 10 classes.

    Flips are off (a mirrored digit is another glyph) and the crop padding defaults to 1 pixel.
    `root` is unused: the data ships with scikit-learn.
    """

    num_classes = 10
    image_shape = (1, 8, 8)
    flip_allowed = False

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_size: float = 0.0,
        test_subset_size: int | None = None,
        pool_size_per_class: int = 50,
        crop_padding: int = 1,
        horizontal_flip: bool | None = None,
        seed: int | None = None,
        num_workers: int = 0,
        pool_split: Literal["train", "test"] = "train",
        device_resident: bool = False,
    ) -> None:
        super().__init__(
            root,
            batch_size,
            eval_batch_size,
            val_size,
            test_subset_size,
            pool_size_per_class,
            crop_padding,
            horizontal_flip,
            seed,
            num_workers,
            pool_split,
            device_resident,
        )

    @override
    def load_split(self, split: str) -> Arrays:
        bunch = load_digits()
        images = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
        labels = torch.from_numpy(bunch.target).long()
        generator = torch.Generator().manual_seed(_SPLIT_SEED)
        test_parts = []
        for label in range(self.num_classes):
            members = torch.nonzero(labels == label).flatten()
            members = members[torch.randperm(len(members), generator=generator)]
            test_parts.append(members[: round(_TEST_FRACTION * len(members))])
        is_test = torch.zeros(len(labels), dtype=torch.bool)
        is_test[torch.cat(test_parts)] = True
        chosen = is_test if split == "test" else ~is_test
        return images[chosen].unsqueeze(1).contiguous(), labels[chosen]
