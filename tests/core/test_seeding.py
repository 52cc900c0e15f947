"""Tests for the counter-based randomness of mixup_robust.seeding."""

import numpy as np
import pytest
import torch

from mixup_robust.seeding import keyed_integers, keyed_uniform, numpy_rng, seeded_torch_rng

# --------------------------------------------------------------------------------- keyed_uniform


def test_keyed_uniform_range_and_dtype():
    u = keyed_uniform(0, torch.arange(100_000))
    assert u.dtype == torch.float64
    assert u.shape == (100_000,)
    assert (u >= 0).all() and (u < 1).all()


@pytest.mark.parametrize("seed", [0, 1, 2**40, 2**64 - 1, -3])
def test_keyed_uniform_extreme_seeds_and_keys_stay_in_range(seed):
    keys = torch.tensor([0, 1, -1, 2**62, -(2**63), 2**63 - 1])
    u = keyed_uniform(seed, keys, 7)
    assert (u >= 0).all() and (u < 1).all()
    assert len(torch.unique(u)) == len(keys)


_M64 = (1 << 64) - 1


def _reference_splitmix64(x: int) -> int:
    """SplitMix64 (Steele et al.) on unsigned Python ints: the output for state x."""
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _reference_uniform(seed: int, *keys: int) -> float:
    state = _reference_splitmix64(seed & _M64)
    for key in keys:
        state = _reference_splitmix64(state ^ (key & _M64))
    return (state >> 11) / 2.0**53


def test_reference_splitmix64_known_vector():
    # The first output of the SplitMix64 generator seeded with 0.
    assert _reference_splitmix64(0) == 0xE220A8397B1DCDAF


def test_keyed_uniform_matches_unsigned_reference():
    """The int64 tensor arithmetic (wrapping products, logical shifts) is exact SplitMix64."""
    assert keyed_uniform(0).item() == (0xE220A8397B1DCDAF >> 11) / 2.0**53
    cases = [(0, ()), (0, (0,)), (1, (5, 2)), (2**63 + 11, (2**40, 3)), (12345, (-1, 7, 0))]
    for seed, keys in cases:
        assert keyed_uniform(seed, *keys).item() == _reference_uniform(seed, *keys)
    index = torch.arange(0, 5000, 37)
    grid = keyed_uniform(99, index[:, None], torch.arange(3), 2)
    for row, i in enumerate(index.tolist()):
        for n in range(3):
            assert grid[row, n].item() == _reference_uniform(99, i, n, 2)


def test_keyed_uniform_deterministic_for_same_keys():
    index = torch.arange(50)
    a = keyed_uniform(3, index[:, None], torch.arange(4), 1)
    b = keyed_uniform(3, index[:, None], torch.arange(4), 1)
    assert torch.equal(a, b)


def test_keyed_uniform_changes_with_seed_key_and_stream():
    index = torch.arange(2, 1002)
    base = keyed_uniform(0, index, 1)
    for other in (
        keyed_uniform(1, index, 1),  # other seed
        keyed_uniform(0, index + 1000, 1),  # other sample indices
        keyed_uniform(0, index, 2),  # other stream
        keyed_uniform(0, 1, index),  # keys in another order (index never equals 1)
    ):
        # Independent draws: essentially never equal, and uncorrelated.
        assert (base == other).sum() == 0
        corr = torch.corrcoef(torch.stack([base, other]))[0, 1]
        assert abs(corr.item()) < 0.1


def test_keyed_uniform_broadcasting_shape():
    u = keyed_uniform(0, torch.arange(5)[:, None], torch.arange(3), 2)
    assert u.shape == (5, 3)
    assert len(torch.unique(u)) == 15
    v = keyed_uniform(0, torch.arange(2)[:, None, None], torch.arange(3)[None, :, None], 4)
    assert v.shape == (2, 3, 1)
    # Plain int keys alone give a scalar.
    assert keyed_uniform(0, 3, 4).shape == ()


def test_keyed_uniform_broadcast_equals_elementwise():
    """Entry (i, n) of the broadcast result is the draw for keys (i, n) alone."""
    grid = keyed_uniform(9, torch.arange(6)[:, None], torch.arange(4), 1)
    for i in range(6):
        for n in range(4):
            assert grid[i, n] == keyed_uniform(9, i, n, 1)
            assert grid[i, n] == keyed_uniform(9, torch.tensor([i]), torch.tensor([n]), 1)[0]


def test_keyed_uniform_independent_of_batching():
    keys = torch.arange(100)
    at_once = keyed_uniform(5, keys, 2)
    one_by_one = torch.stack([keyed_uniform(5, keys[i : i + 1], 2)[0] for i in range(100)])
    assert torch.equal(at_once, one_by_one)
    in_chunks = torch.cat([keyed_uniform(5, chunk, 2) for chunk in keys.split(7)])
    assert torch.equal(at_once, in_chunks)
    shuffled = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(keyed_uniform(5, keys[shuffled], 2), at_once[shuffled])


def test_keyed_uniform_moments():
    u = keyed_uniform(123, torch.arange(100_000), 1)
    assert abs(u.mean().item() - 0.5) < 0.005
    assert abs(u.var().item() - 1 / 12) < 0.002


def test_keyed_uniform_bucket_counts_chi_square():
    """Counts in 20 equal buckets: chi-square with 19 dof is < 60 with overwhelming odds."""
    buckets = 20
    n = 100_000
    u = keyed_uniform(7, torch.arange(n)[:, None], torch.arange(1), 2).flatten()
    counts = torch.bincount((u * buckets).long(), minlength=buckets).double()
    assert len(counts) == buckets
    expected = n / buckets
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 60, chi2


def test_keyed_uniform_consecutive_keys_not_serially_correlated():
    u = keyed_uniform(0, torch.arange(100_001), 1)
    corr = torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1]
    assert abs(corr.item()) < 0.02


# -------------------------------------------------------------------------------- keyed_integers


def test_keyed_integers_scalar_high_range_and_coverage():
    values = keyed_integers(0, 10, torch.arange(20_000), 3)
    assert values.dtype == torch.int64
    assert values.min() == 0 and values.max() == 9
    counts = torch.bincount(values, minlength=10)
    assert (counts > 1700).all() and (counts < 2300).all()


def test_keyed_integers_per_element_high():
    highs = torch.tensor([1, 2, 3, 5, 1000])
    n = 4000
    values = keyed_integers(1, highs[:, None], torch.arange(5)[:, None], torch.arange(n))
    assert values.shape == (5, n)
    assert (values >= 0).all()
    assert (values < highs[:, None]).all()
    assert (values[0] == 0).all()  # high 1 has a single value
    for row, high in enumerate(highs[:4].tolist()):
        assert set(values[row].tolist()) == set(range(high))
    assert values[4].max() > 900


def test_keyed_integers_match_floor_of_uniform():
    keys = torch.arange(100)
    assert torch.equal(
        keyed_integers(2, 7, keys, 5), torch.floor(keyed_uniform(2, keys, 5) * 7).long()
    )


# --------------------------------------------------------------------------- numpy_rng / torch


def test_numpy_rng_keyed():
    a = numpy_rng(0, 1, 2).integers(0, 2**31, 10)
    b = numpy_rng(0, 1, 2).integers(0, 2**31, 10)
    c = numpy_rng(0, 2, 1).integers(0, 2**31, 10)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_seeded_torch_rng_restores_global_state():
    torch.manual_seed(1234)
    expected = torch.rand(5)  # what the global RNG gives without the block

    torch.manual_seed(1234)
    state = torch.get_rng_state()
    with seeded_torch_rng(0, 3, 4):
        torch.rand(1000)
        torch.randn(10)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(5), expected)


def test_seeded_torch_rng_restores_state_after_exception():
    state = torch.get_rng_state()
    with pytest.raises(KeyError), seeded_torch_rng(0, 1):
        torch.rand(3)
        raise KeyError("boom")
    assert torch.equal(torch.get_rng_state(), state)


def test_seeded_torch_rng_same_keys_same_draws():
    torch.manual_seed(0)
    with seeded_torch_rng(5, 1, 2):
        a = torch.rand(20)
    torch.manual_seed(99)  # the draws do not depend on the outer state
    torch.rand(3)
    with seeded_torch_rng(5, 1, 2):
        b = torch.rand(20)
    with seeded_torch_rng(5, 1, 3):
        c = torch.rand(20)
    with seeded_torch_rng(6, 1, 2):
        d = torch.rand(20)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, d)


def test_seeded_torch_rng_ignores_cpu_device_argument():
    with seeded_torch_rng(5, 1, device=torch.device("cpu")):
        a = torch.rand(4)
    with seeded_torch_rng(5, 1):
        b = torch.rand(4)
    assert torch.equal(a, b)
