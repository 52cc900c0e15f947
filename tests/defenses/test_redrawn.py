"""`redrawn`: the one way a defense draws anew, for an attack and for a repeated trial."""

import pytest
import torch
from torch import nn

from mixup_robust.defenses import Defense, GaussianNoise, MixupInferenceCombined, redrawn
from mixup_robust.evaluation.trials import defense_trial
from mixup_robust.seeding import Part, Stream, derive_seed


def _seeds(defenses):
    return [(m.name, m.seed) for d in defenses for m in d.modules() if isinstance(m, Defense)]


@pytest.fixture
def defenses(pool):
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    combined = MixupInferenceCombined(n_executions=4).bind(classifier, pool, seed=5)
    noise = GaussianNoise(sigma=0.1, n_executions=3).bind(classifier, seed=9)
    return [combined, noise]


def test_combined_parts_are_seeded_on_their_stream(defenses):
    combined = defenses[0]
    assert combined.mi_pl.seed == derive_seed(5, Stream.MI_COMBINED_PARTS, Part.MI_PL)
    assert combined.mi_ol.seed == derive_seed(5, Stream.MI_COMBINED_PARTS, Part.MI_OL)


@pytest.mark.parametrize("stream", [Stream.ATTACK_DRAW, Stream.TRIAL])
def test_every_part_takes_the_derived_seed_and_gets_its_own_back(defenses, stream):
    before = _seeds(defenses)
    assert len(before) == 4  # MI-Combined, its PL and OL parts, the noise
    with redrawn(defenses, stream, 3):
        inside = _seeds(defenses)
    assert inside == [(name, derive_seed(seed, stream, 3)) for name, seed in before]
    assert _seeds(defenses) == before
    with redrawn(defenses, stream, 0):
        assert _seeds(defenses) == before


def test_seeds_come_back_after_an_error(defenses):
    before = _seeds(defenses)
    with pytest.raises(RuntimeError), redrawn(defenses, Stream.TRIAL, 2):
        raise RuntimeError("mid-draw")
    assert _seeds(defenses) == before


def test_fresh_draw_and_defense_trial_are_redrawn_on_their_streams(defenses):
    combined = defenses[0]
    before = _seeds([combined])
    with combined.fresh_draw(4):
        drawn = _seeds([combined])
    with redrawn([combined], Stream.ATTACK_DRAW, 4):
        assert _seeds([combined]) == drawn
    with defense_trial(defenses, 2):
        trial = _seeds(defenses)
        with combined.fresh_draw(1):  # an attack's draw within a trial derives from the trial
            nested = _seeds([combined])
    with redrawn(defenses, Stream.TRIAL, 2):
        assert _seeds(defenses) == trial
    assert nested == [(n, derive_seed(s, Stream.ATTACK_DRAW, 1)) for n, s in trial[:3]]
    assert drawn != trial[:3] and _seeds([combined]) == before


def test_a_redrawn_defense_draws_other_noise(defenses, images):
    noise = defenses[1]
    index = torch.arange(len(images))
    first = noise(images, index)
    with redrawn([noise], Stream.TRIAL, 1):
        other = noise(images, index)
    assert not torch.allclose(first, other)
    assert torch.equal(noise(images, index), first)
