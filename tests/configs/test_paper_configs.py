"""Every config that names a paper table runs that table's setting (MI paper, VarMixup paper)."""

from fractions import Fraction

import pytest

from tests.helpers.configs import resolved

MI_TRAINING = [f"{data}/{method}.yaml" for data in ("cifar10", "cifar100")
               for method in ("erm", "mixup", "at", "iat")]  # fmt: skip
MI_TABLES = [
    "cifar10_mixup_table2", "cifar10_iat_table2", "cifar10_erm_mi_ol_table2",
    "cifar10_at_mi_ol_table2", "cifar100_mixup_table3", "cifar100_iat_table3",
    "cifar10_mixup_figure3", "cifar10_mi_figure4",
]  # fmt: skip


def load(name: str) -> dict:
    """A config as the CLI resolves it: its includes (data, recipe) and blocks read, defaults
    filled in; `cifar100/<method>.yaml` is the CIFAR-10 config with the CIFAR-100 block."""
    return resolved("test" if name.startswith("eval/") else "fit", name)


def resolved_data(subcommand: str, name: str) -> dict:
    """A config's data init_args as the CLI resolves them (the block includes configs/data/)."""
    return resolved(subcommand, name)["data"]["init_args"]


def components(config: dict, kind: str) -> list[dict]:
    """The defenses (also swept ones) or attacks of an evaluation config."""
    args = config["model"]["init_args"]
    found = list(args.get(kind) or [])
    if kind == "defenses":
        found += [sweep["init_args"]["defense"] for sweep in args.get("sweeps") or []]
    return found


@pytest.mark.parametrize("name", [*MI_TRAINING, "cifar10/at_madry.yaml", "cifar100/at_madry.yaml"])
def test_mi_training_configs_use_the_official_net_and_schedule(name):
    config = load(name)
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    data_set = "CIFAR100" if name.startswith("cifar100/") else "CIFAR10"
    assert config["data"]["class_path"] == f"mixup_robust.data.{data_set}DataModule"
    assert model["net"]["class_path"] == "mixup_robust.nets.MIResNet50"
    optimizer, scheduler = model["optimizer"], model["scheduler"]
    sgd = optimizer["init_args"]
    assert sgd["weight_decay"] == 0.0 and sgd["momentum"] == 0.9
    assert optimizer["class_path"] == "torch.optim.SGD" and not sgd.get("nesterov", False)
    assert scheduler["class_path"] == "torch.optim.lr_scheduler.MultiStepLR"
    assert model["scheduler_interval"] == "epoch"
    milestones = {key: scheduler["init_args"][key] for key in ("milestones", "gamma")}
    assert milestones == {"milestones": [100, 150], "gamma": 0.1}
    assert scheduler["init_args"]["last_epoch"] == -1  # the rest at torch's defaults
    assert config["trainer"]["max_epochs"] == 200 and data["batch_size"] == 64
    assert data["crop_padding"] == 4 and data.get("horizontal_flip", True) is not False
    assert sgd["lr"] == (0.1 if name.endswith("iat.yaml") else 0.01)


@pytest.mark.parametrize("data", ["cifar10", "cifar100"])
def test_mi_at_is_clean_and_pgd_one_to_one_and_madry_keeps_its_own_name(data):
    at = load(f"{data}/at.yaml")["model"]["init_args"]
    assert at["adversarial_fraction"] == 0.5 and at["attack_labels"] == "predicted"
    assert at["attack_bn_mode"] == "eval" and at["steps"] == 10
    madry = load(f"{data}/at_madry.yaml")["model"]["init_args"]
    assert madry["adversarial_fraction"] == 1.0 and madry.get("attack_labels", "true") == "true"


@pytest.mark.parametrize("data", ["cifar10", "cifar100"])
def test_mi_iat_trains_as_the_official_code(data):
    iat = load(f"{data}/iat.yaml")["model"]["init_args"]
    assert iat["share_mixing"] is False and iat["joint_forward"] is True
    assert iat["attack_labels"] == "predicted" and iat["attack_bn_mode"] == "eval"
    assert iat["alpha"] == 1.0 and iat["random_start"] is True


@pytest.mark.parametrize("name", MI_TABLES)
def test_mi_table_configs_run_the_official_evaluation(name):
    config = load(f"eval/{name}.yaml")
    data = resolved_data("test", f"eval/{name}.yaml")
    assert data["pool_split"] == "test" and data["test_subset_size"] == 1000
    assert data["pool_size_per_class"] == (100 if name.startswith("cifar100") else 1000)
    classes = [d["class_path"].rsplit(".", 1)[1] for d in components(config, "defenses")]
    assert "RandomResizePad" not in classes
    for defense in components(config, "defenses"):
        if defense["class_path"].endswith("GaussianNoise"):
            assert defense["init_args"]["sigma_unit"] == "symmetric"
            assert defense["init_args"]["clip"] is False
    for attack in components(config, "attacks"):
        args = attack["init_args"]
        if attack["class_path"].endswith(".PGD"):
            assert Fraction(args["eps"]) == Fraction(8, 255)
            assert Fraction(args["step_size"]) == Fraction(2, 255)
            if args.get("target", "none") == "none":
                assert args["labels"] == "predicted"
        if attack["class_path"].endswith("MixupInferenceAdaptivePGD"):
            assert args["variant"] == "paper"


def test_xie_rows_use_the_mi_papers_crop_and_pad():
    for name in ("cifar10_mixup_table2", "cifar10_iat_table2", "cifar100_mixup_table3"):
        xie = [d for d in components(load(f"eval/{name}.yaml"), "defenses")
               if d.get("init_args", {}).get("name") == "Xie et al. 2018"]  # fmt: skip
        assert [d["class_path"] for d in xie] == ["mixup_robust.defenses.RandomCropPad"]


def test_project_adaptive_evaluation_keeps_the_stronger_variant():
    attacks = components(load("eval/cifar10_adaptive.yaml"), "attacks")
    mi = [a for a in attacks if a["class_path"].endswith("MixupInferenceAdaptivePGD")]
    assert mi and all(a["init_args"].get("variant", "project") == "project" for a in mi)


def test_varmixup_config_runs_the_varmixup_protocol():
    config = load("eval/cifar10_varmi.yaml")
    assert config["model"]["init_args"]["trials"] == 10
    (attack,) = components(config, "attacks")
    args = attack["init_args"]
    assert attack["class_path"] == "mixup_robust.attacks.PGD" and args["steps"] == 10
    assert Fraction(args["eps"]) == Fraction(args["step_size"]) == Fraction(8, 255)
    assert args["random_start"] is False and args.get("target", "none") == "none"
