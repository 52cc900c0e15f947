"""The default chunk size of the defenses' B x N forward passes, from the device's memory.

A chunk bounds the images of one no-grad forward pass of a randomized defense. Its peak
memory is about the largest activations of the classifier: for a ResNet-50-sized CIFAR net
(the MI paper's) about 1 KiB of fp32 activations per input value (256 channels x 32 x 32 x
4 bytes for a 3 x 32 x 32 image, some 3 MiB). The default gives a chunk a quarter of the
device's free memory, so an 80 GB GPU runs thousands of images per pass and an 8 GB one a
few hundred. Under an adaptive attack the graph of every chunk is kept until the backward
pass, so there the attack's batch (the DataModule's eval_batch_size) x N bounds the memory.
"""

import math
from collections.abc import Sequence

import torch

BYTES_PER_INPUT_VALUE = 1024
"""Peak no-grad activation bytes per input value assumed for the classifier (see above)."""

MEMORY_FRACTION = 0.25
"""Share of the device's free memory one chunk may use."""

CPU_CHUNK_SIZE = 4096
"""On CPU memory is rarely the limit and larger chunks do not run faster."""

MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, CHUNK_MULTIPLE = 64, 32768, 64


def default_chunk_size(device: torch.device, image_shape: Sequence[int]) -> int:
    """Images per forward pass for images of `image_shape` (C, H, W) on `device`.

    CUDA: a quarter of the free memory over the assumed peak bytes per image, a multiple of
    64 in [64, 32768]. Other devices: 4096.
    """
    if device.type != "cuda":
        return CPU_CHUNK_SIZE
    free, _ = torch.cuda.mem_get_info(device)
    per_image = BYTES_PER_INPUT_VALUE * math.prod(image_shape)
    fitting = int(free * MEMORY_FRACTION / per_image) // CHUNK_MULTIPLE * CHUNK_MULTIPLE
    return min(MAX_CHUNK_SIZE, max(MIN_CHUNK_SIZE, fitting))
