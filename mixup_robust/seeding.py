"""Seeded randomness that does not depend on batch size, chunk size or the number of ranks.

Defenses draw their randomness per sample with a counter-based hash (SplitMix64) of
(seed, sample index, execution, stream): the same test point gets the same MI partners whether it
is evaluated alone, in a batch of 500, chunked, or on rank 1 of 4. Training draws come from a
numpy generator keyed on (seed, rank, step), so resuming from a checkpoint reproduces them
without storing generator state.
"""

import contextlib
import os
from collections.abc import Iterator
from enum import IntEnum, unique

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


@unique
class Stream(IntEnum):
    """Every stream number of the keyed draws (`keyed_uniform`, `derive_seed`), in one place.

    A stream number keeps one purpose's draws apart from every other's; `unique` refuses two
    purposes with one number at import. The values are the ones the draws have always used.
    """

    MI_CLASS = 1  # MI: the partner's class, per (sample, execution)
    MI_MEMBER = 2  # MI: the partner within its class
    TRANSFORM_A = 11  # input transforms: first per-(sample, execution) draw
    TRANSFORM_B = 12
    TRANSFORM_C = 13
    TRANSFORM_D = 14  # crop-pad: pad offsets
    TRANSFORM_E = 15
    LINEARITY_START = 71  # local linearity: random starts
    MI_COMBINED_PARTS = 0xC0  # MI-Combined: seeds of its PL and OL parts (`Part`)
    TRIAL = 0x7A1  # repeated trials: every seed of trial t > 0
    ATTACK_DRAW = 0xD4A3  # a defense's draws seen by an attack (draw >= 1)
    FULL_LADDER = 0xF011  # the audit: which samples run every rung


@unique
class Part(IntEnum):
    """Numbers keyed after a stream or attack key to pick one part of a whole."""

    UNBOUNDED_PROBE = 0  # the audit's eps = 1 probe, apart from the rungs 1..K
    MI_PL = 1  # MI-Combined's detector (after `Stream.MI_COMBINED_PARTS`)
    MI_OL = 2  # MI-Combined's answer


@unique
class DataStream(IntEnum):
    """The data module's seeded draws (`data_generator`): splits and the sampling pool."""

    SPLIT = 1  # the validation split out of the training images
    TEST_SUBSET = 2  # the test subset
    POOL = 3  # the sampling pool's members
    POOL_AUGMENT = 4  # the test-split pool's one augmentation


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MUL1 = _signed(0xBF58476D1CE4E5B9)
_MUL2 = _signed(0x94D049BB133111EB)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical (unsigned) right shift of int64 bits."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(x: torch.Tensor) -> torch.Tensor:
    # int64 multiplication wraps modulo 2**64 in torch, which is what SplitMix64 needs.
    z = x + _GOLDEN
    z = (z ^ _shift_right(z, 30)) * _MUL1
    z = (z ^ _shift_right(z, 27)) * _MUL2
    return z ^ _shift_right(z, 31)


def keyed_uniform(seed: int, *keys: torch.Tensor | int) -> torch.Tensor:
    """Uniform floats in [0, 1), one per element of the broadcast keys.

    Args:
        seed: the run's seed.
        *keys: int64 tensors (or ints) broadcast together, e.g. sample indices (B, 1),
            execution numbers (1, N) and a stream number that separates purposes.

    Returns:
        float64 tensor of the broadcast shape, on the keys' device.
    """
    tensors = [k for k in keys if isinstance(k, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    state = _splitmix64(torch.tensor(_signed(seed), dtype=torch.int64, device=device))
    for key in keys:
        key = torch.as_tensor(key, dtype=torch.int64, device=device)
        state = _splitmix64(state ^ key)
    return _shift_right(state, 11).to(torch.float64) / float(1 << 53)


def keyed_integers(seed: int, high: torch.Tensor | int, *keys: torch.Tensor | int) -> torch.Tensor:
    """Integers uniform in [0, high) per element (high may differ per element), int64."""
    uniform = keyed_uniform(seed, *keys)
    high = torch.as_tensor(high, device=uniform.device)
    return torch.minimum((uniform * high).long(), high.long() - 1)


def derive_seed(seed: int, *keys: int) -> int:
    """A 53-bit seed determined by the seed and the keys (independent streams)."""
    return int(keyed_uniform(seed, *keys).item() * float(1 << 53))


def numpy_rng(seed: int, *keys: int) -> np.random.Generator:
    """A numpy generator determined by the seed and the keys (e.g. rank, step)."""
    return np.random.default_rng([seed, *keys])


def data_generator(seed: int, stream: DataStream) -> torch.Generator:
    """A CPU torch generator for one of the data module's draws (seeded `seed * 1000 + stream`).

    The data module's splits and pool are drawn with torch's generators on this scheme, so they
    stay the ones every earlier run drew.
    """
    return torch.Generator().manual_seed(seed * 1000 + DataStream(stream))


@contextlib.contextmanager
def seeded_torch_rng(seed: int, *keys: int, device: torch.device | None = None) -> Iterator[None]:
    """Seeds torch's global RNG for the block and restores the previous state after it.

    For library code that only reads the global RNG (torchattacks' random starts).
    """
    on_cuda = device is not None and device.type == "cuda"
    derived = int(numpy_rng(seed, *keys).integers(0, 2**63 - 1))
    with torch.random.fork_rng(devices=[device] if on_cuda else []):
        # Seeds the CPU generator and this device's only: torch.manual_seed would reseed every
        # GPU, and fork_rng restores only the devices it was given.
        torch.default_generator.manual_seed(derived)
        if on_cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(derived)
        yield


# Seeds numpy, torch and Lightning all accept (Lightning's `seed_everything` range).
MAX_SEED = 2**32 - 1


def check_seed(seed: int, name: str = "seed") -> int:
    """`seed` as an int, or a clear error when numpy and Lightning would refuse it mid-run.

    Raises:
        ValueError: the seed is negative or above 2**32 - 1 (numpy's generators refuse
            negative seeds, at the first draw, deep inside a run).
    """
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(
            f"{name}={seed!r}: a seed must be an integer in [0, {MAX_SEED}] (numpy and "
            "Lightning refuse others, and numpy only at its first draw, mid-run). Choose a "
            "non-negative seed."
        )
    return int(seed)


def resolve_seed(seed: int | None) -> int:
    """`seed`, or the run's global seed when it is None (one seed drives every draw).

    The global seed is the one `lightning.seed_everything` (and so `--seed_everything` of the
    CLI) exports as PL_GLOBAL_SEED; without one it is 0.

    Raises:
        ValueError: the seed is negative or too large (`check_seed`).
    """
    if seed is not None:
        return check_seed(seed)
    return check_seed(int(os.environ.get("PL_GLOBAL_SEED", 0)), "PL_GLOBAL_SEED")
