"""Precision and memory-format helpers of the GPU fast path (bf16 autocast, channels_last).

Attacks and defenses run in float32 even where training uses bf16 autocast: a perturbation
of 2/255 per step is near bf16's resolution of pixel values (8 bits of mantissa), and
gradient signs of bf16 losses differ from fp32 ones. No test here shows them equal, so the
project keeps them fp32 (DESIGN.md: "attacks in fp32 unless shown equal").
"""

import contextlib

import torch

FULL_PRECISION = ("32-true", "32", 32)
"""Lightning precision values that run everything in float32."""


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Turns autocast off for the block on `device`'s type (inputs must already be fp32)."""
    return torch.autocast(device_type=device.type, enabled=False)


def refuse_reduced_precision(precision: str | int | None, where: str) -> None:
    """Raises when a Trainer's precision is not float32 for a module that must run in fp32."""
    if precision is not None and precision not in FULL_PRECISION:
        raise ValueError(
            f"{where} runs attacks and defenses in float32, but trainer.precision is "
            f"{precision!r}. Set trainer.precision: 32-true (bf16-mixed is for training)."
        )


def to_channels_last(images: torch.Tensor) -> torch.Tensor:
    """The same NCHW values stored channels-last (NHWC in memory), for tensor-core convs."""
    return images.contiguous(memory_format=torch.channels_last)
