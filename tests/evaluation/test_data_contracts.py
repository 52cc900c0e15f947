"""What evaluation needs of a DataModule is declared (Protocols), met by ours, refused otherwise."""

from types import SimpleNamespace

import lightning as L
import pytest
from torch import nn

from mixup_robust.data import CorruptionDataModule, DigitsDataModule
from mixup_robust.defenses import MixupInference, NoDefense
from mixup_robust.evaluation.binding import bind_defenses
from mixup_robust.evaluation.data_contracts import (
    CorruptionStreamsData,
    SamplingPoolData,
    required_datamodule,
)
from tests.helpers.defenses import NUM_CLASSES, linear_net, pool_data


def _measurement(datamodule):
    """What bind_defenses reads of a measurement: its trainer's data, classifier and seed."""
    trainer = SimpleNamespace(datamodule=datamodule)
    return SimpleNamespace(_trainer=trainer, trainer=trainer, classifier=linear_net(), seed=5)


def test_our_datamodules_fulfil_the_contracts_and_a_plain_one_does_not(tmp_path):
    assert isinstance(DigitsDataModule(root=str(tmp_path)), SamplingPoolData)
    corruptions = CorruptionDataModule(root=str(tmp_path), corruptions=["snow"], severities=[1, 3])
    assert isinstance(corruptions, CorruptionStreamsData)
    assert not isinstance(corruptions, SamplingPoolData)
    plain = L.LightningDataModule()
    assert not isinstance(plain, SamplingPoolData) and not isinstance(plain, CorruptionStreamsData)


def test_a_missing_contract_is_refused_with_the_projects_message():
    defenses = nn.ModuleList([NoDefense(), MixupInference("other", n_executions=2)])
    for data in (None, L.LightningDataModule()):
        with pytest.raises(ValueError, match="sampling pool need a mixup_robust DataModule"):
            bind_defenses(_measurement(data), defenses, NUM_CLASSES)
    unattached = SimpleNamespace(_trainer=None)
    with pytest.raises(ValueError, match="one test DataLoader per corruption"):
        required_datamodule(unattached, CorruptionStreamsData, "one test DataLoader per corruption")


def test_defenses_are_bound_to_the_pool_the_contract_gives():
    images, labels = pool_data()
    data = SimpleNamespace(sampling_pool=lambda: (images, labels))
    mixing = MixupInference("other", n_executions=2)
    assert mixing.needs_pool
    measurement = _measurement(data)
    bind_defenses(measurement, nn.ModuleList([NoDefense(), mixing]), NUM_CLASSES)
    assert mixing.classifier is measurement.classifier and mixing.seed == 5
    assert len(mixing.pool.labels) == len(labels)
