"""Bring your own model: a torchvision architecture saved by the test, audited and checked."""

import json

import pytest
import torch
import torchvision
import yaml

from mixup_robust.attacks import PGD
from mixup_robust.evaluation import DefenseAudit, ExternalClassifier
from tests.helpers.cli import SHARED_DATA, run_cli

CIFAR_ZIP = SHARED_DATA / "cifar10-jpeg.zip"
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def resnet(num_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=num_classes).eval()


def external(path, **overrides) -> ExternalClassifier:
    settings = {"architecture": "torchvision.models.resnet18", "state_dict": str(path),
                "mean": MEAN, "std": STD, "init_args": {"num_classes": 10}}  # fmt: skip
    return ExternalClassifier(**(settings | overrides))


def test_the_loaded_classifier_is_normalize_then_the_saved_net(tmp_path):
    net = resnet()
    torch.save(net.state_dict(), tmp_path / "resnet.pt")
    classifier, hparams = external(tmp_path / "resnet.pt").load((3, 32, 32))
    assert hparams == {"num_classes": 10, "image_shape": [3, 32, 32]}
    images = torch.rand(4, 3, 32, 32)
    normalized = (images - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(classifier(images), net(normalized), atol=1e-5)
    # Nested and DataParallel-prefixed files load with state_dict_key and strip_prefix.
    nested = {"model": {f"module.{k}": v for k, v in net.state_dict().items()}}
    torch.save(nested, tmp_path / "nested.pt")
    again, _ = external(tmp_path / "nested.pt", state_dict_key="model",
                        strip_prefix="module.").load((3, 32, 32))  # fmt: skip
    with torch.no_grad():
        assert torch.equal(again(images), classifier(images))


def test_bad_models_are_refused_with_clear_errors(tmp_path):
    net = resnet()
    with pytest.raises(FileNotFoundError, match="No state_dict file"):
        external(tmp_path / "absent.pt").load((3, 32, 32))
    torch.save(net, tmp_path / "pickled_module.pt")  # the object, not its state_dict
    with pytest.raises(ValueError, match="weights_only=True"):
        external(tmp_path / "pickled_module.pt").load((3, 32, 32))
    state = net.state_dict()
    state["fc.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "diverged.pt")
    with pytest.raises(ValueError, match=r"non-finite weights .*fc.weight"):
        external(tmp_path / "diverged.pt").load((3, 32, 32))
    torch.save(resnet().state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(ValueError, match="cannot be imported"):
        external(tmp_path / "resnet.pt", architecture="torchvision.models.no_such_net").load(
            (3, 32, 32)
        )
    with pytest.raises(ValueError, match="channels"):
        external(tmp_path / "resnet.pt").load((1, 8, 8))  # digits: one channel
    with pytest.raises(ValueError, match="std must be positive"):
        external(tmp_path / "resnet.pt", std=[0.2, 0.0, 0.2])
    with pytest.raises(RuntimeError, match="size mismatch"):
        external(tmp_path / "resnet.pt", init_args={"num_classes": 5}).load((3, 32, 32))


def test_a_model_with_other_classes_than_the_data_is_refused(tmp_path):
    torch.save(resnet(num_classes=100).state_dict(), tmp_path / "resnet100.pt")
    model = external(tmp_path / "resnet100.pt", init_args={"num_classes": 100})
    _, hparams = model.load((3, 32, 32))
    rungs = [PGD(eps="8/255", step_size="2/255", steps=2)]
    evaluation = DefenseAudit(model, rungs=rungs, num_classes=10, image_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="num_classes=100 but the data has num_classes=10"):
        evaluation.check_matches_data(hparams)


@pytest.mark.skipif(not CIFAR_ZIP.is_file(), reason="needs ../shared/data/cifar10-jpeg.zip")
def test_a_torchvision_resnet_is_audited_on_real_cifar_images(tmp_path):
    torch.save(resnet().state_dict(), tmp_path / "resnet.pt")
    config = {
        "trainer": {"accelerator": "cpu", "devices": 1, "default_root_dir": str(tmp_path)},
        "model": {
            "class_path": "mixup_robust.evaluation.DefenseAudit",
            "init_args": {
                "checkpoint": {"class_path": "mixup_robust.evaluation.ExternalClassifier",
                               "init_args": {"architecture": "torchvision.models.resnet18",
                                             "state_dict": str(tmp_path / "resnet.pt"),
                                             "mean": MEAN, "std": STD,
                                             "init_args": {"num_classes": 10}}},
                "output_dir": str(tmp_path / "out"), "trials": 1, "check_unbounded": False,
                "full_ladder_fraction": 1.0,
                "rungs": [{"class_path": "mixup_robust.attacks.PGD",
                           "init_args": {"eps": "8/255", "step_size": "2/255", "steps": 2}}],
            },
        },
        "data": {"class_path": "mixup_robust.data.ImageFolderDataModule",
                 "init_args": {"root": str(CIFAR_ZIP), "limit_per_class": 2,
                               "eval_batch_size": 20}},
    }  # fmt: skip
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(config))
    run_cli("test", "--config", tmp_path / "audit.yaml")
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    worst = next(r for r in records if r["attack"] == "worst case")
    assert worst["n"] == 20 and worst["checkpoint"].startswith("torchvision.models.resnet18 @")
    assert worst["accuracy"] <= next(r for r in records if r["attack"] == "clean")["accuracy"]
