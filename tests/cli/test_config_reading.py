"""What the command line and config files mean: a list given on the command line or in a later
config replaces the list before it (never merged item by item), a YAML key given twice is an
error naming the key and its lines, a key an include would override is refused, and seeds
out of numpy's range are refused up front."""

import contextlib
import io
import re

import pytest
import yaml

from mixup_robust.config_checks import (
    DuplicateKeyError,
    IncludeOrderError,
    check_include_order,
    check_unique_keys,
    replace_list_overrides,
)
from tests.helpers.cli import CONF, run_cli

TEST = ["test", "--config", CONF / "evaluate.yaml", "--model.init_args.checkpoint", "unread.ckpt"]
FGSM = {"class_path": "mixup_robust.attacks.FGSM", "init_args": {"eps": 0.1}}
PGD = {"class_path": "mixup_robust.attacks.PGD", "init_args": {"eps": 0.2}}
# PGD's own defaults: what an item that does not give them must get (not the config's item's).
PGD_DEFAULTS = {"step_size": "2/255", "steps": 10, "name": None}


def printed(*args) -> dict:
    """The resolved config that `cli.py <args> --print_config` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        run_cli(*args, "--print_config")
    assert exit_info.value.code in (0, None), out.getvalue()
    return yaml.safe_load(out.getvalue())


def attacks(config: dict) -> list[tuple[str, dict]]:
    return [(a["class_path"].rsplit(".", 1)[1], a["init_args"]) for a in
            config["model"]["init_args"]["attacks"]]  # fmt: skip


@pytest.mark.parametrize("given", [[FGSM, PGD], [PGD], [FGSM, PGD, PGD]])
def test_a_list_on_the_command_line_is_exactly_the_given_list(given):
    """The config has two attacks (PGD-10, and PGD-20 named 'PGD-20 (eps 48/255)')."""
    flow = yaml.safe_dump(given, default_flow_style=True)
    for form in (["--model.init_args.attacks", yaml.safe_dump(given)],
                 [f"--model.init_args.attacks={flow}"]):  # fmt: skip
        result = attacks(printed(*TEST, *form))
        assert [name for name, _ in result] == [g["class_path"].rsplit(".", 1)[1] for g in given]
        for (name, init_args), item in zip(result, given, strict=True):
            assert init_args["eps"] == item["init_args"]["eps"]
            if name == "PGD":
                assert {k: init_args[k] for k in PGD_DEFAULTS} == PGD_DEFAULTS


def test_a_list_in_a_later_config_replaces_the_earlier_list(tmp_path):
    later = tmp_path / "later.yaml"
    later.write_text(yaml.safe_dump({"model": {"init_args": {"attacks": [FGSM, PGD]}}}))
    result = attacks(printed(*TEST, "--config", later))
    assert [name for name, _ in result] == ["FGSM", "PGD"]
    assert {k: result[1][1][k] for k in PGD_DEFAULTS} == PGD_DEFAULTS


def test_a_list_given_as_files_replaces_the_list_before_it(tmp_path):
    """Items given as files, or the whole list as one file, replace the config's list too.

    Merged by position, the config's second attack would keep its name 'PGD-20 (eps 48/255)'.
    """
    item, whole = tmp_path / "pgd.yaml", tmp_path / "list.yaml"
    item.write_text(yaml.safe_dump(PGD))
    whole.write_text(yaml.safe_dump([FGSM, PGD]))
    for form, names in ((f"[{item}, {item}]", ["PGD", "PGD"]), (str(whole), ["FGSM", "PGD"])):
        result = attacks(printed(*TEST, "--model.init_args.attacks", form))
        assert [name for name, _ in result] == names
        assert {k: result[1][1][k] for k in PGD_DEFAULTS} == PGD_DEFAULTS
    later = tmp_path / "later.yaml"  # files named relative to the later config itself
    later.write_text(
        yaml.safe_dump({"model": {"init_args": {"attacks": ["pgd.yaml", "pgd.yaml"]}}})
    )
    result = attacks(printed(*TEST, "--config", later))
    assert [name for name, _ in result] == ["PGD", "PGD"]
    assert {k: result[1][1][k] for k in PGD_DEFAULTS} == PGD_DEFAULTS
    assert result[1][1]["eps"] == PGD["init_args"]["eps"]


def test_appending_and_plain_lists_are_left_alone():
    appended = attacks(printed(*TEST, "--model.init_args.attacks+", yaml.safe_dump(FGSM)))
    assert [name for name, _ in appended] == ["PGD", "PGD", "FGSM"]
    assert appended[1][1]["name"] == "PGD-20 (eps 48/255)"
    args = ["--trainer.devices", "[0, 1]", "--x", "[{a: 1}]", "--x+", "[{a: 1}]"]
    assert replace_list_overrides(args) == [*args[:2], "--x", "[]", *args[2:]]


def test_a_repeated_yaml_key_names_the_key_and_lines(tmp_path, capsys):
    config = tmp_path / "twice.yaml"
    config.write_text("trainer:\n  max_epochs: 3\nmodel:\n  init_args: {alpha: 0.5}\n"
                      "trainer:\n  accelerator: cpu\n")  # fmt: skip
    with pytest.raises(SystemExit) as raised:
        run_cli("fit", "--config", CONF / "mixup.yaml", "--config", config)
    error = capsys.readouterr().err
    assert raised.value.code != 0
    assert "twice.yaml: the key 'trainer' is given twice in one block, at lines 1 and 5" in error


def test_repeated_keys_are_found_at_any_depth_and_only_within_one_mapping():
    check_unique_keys("a: {x: 1}\nb: {x: 2}\nc: [{x: 1}, {x: 2}]\n")  # same key, other blocks
    with pytest.raises(DuplicateKeyError, match=r"'lr' is given twice .* lines 3 and 4"):
        check_unique_keys("model:\n  optimizer:\n    lr: 0.1\n    lr: 0.2\n", "c.yaml")
    with pytest.raises(DuplicateKeyError, match="'eps'"):
        check_unique_keys("attacks:\n  - eps: 1\n    eps: 2\n")


def test_a_key_lost_to_an_include_is_refused(tmp_path, capsys):
    """An include overrides what its file writes before it, even a dotted key written after
    it whose block is written before it; a recipe's own include counts as the recipe's."""
    (tmp_path / "data.yaml").write_text("data:\n  init_args: {batch_size: 64}\n")
    (tmp_path / "recipe.yaml").write_text(
        "model:\n  init_args:\n    optimizer: {class_path: torch.optim.SGD}\nconfig: data.yaml\n"
    )
    method = tmp_path / "method.yaml"
    fine = {"model": {"class_path": "M", "init_args": {"alpha": 1.0}}, "config": "recipe.yaml"}
    check_include_order({**fine, "data.init_args.test_subset_size": 10}, method)
    check_include_order({"config": "recipe.yaml", "model.init_args.alpha": 0.5}, method)
    lost_after = {**fine, "model.init_args.optimizer": {"class_path": "torch.optim.Adam"}}
    with pytest.raises(
        IncludeOrderError, match=r"'model\.init_args\.optimizer' after 'config: rec"
    ):
        check_include_order(lost_after, method)
    for block, clash in (({"init_args": {"optimizer": None}}, "model.init_args.optimizer.class"),
                         ({"init_args": {"scheduler_interval": "step"}}, None)):  # fmt: skip
        tree = {"model": block, "config": "recipe.yaml"}
        if clash is None:
            check_include_order(tree, method)  # a key the include does not set is kept
            continue
        with pytest.raises(IncludeOrderError, match=f"which sets '{re.escape(clash)}"):
            check_include_order(tree, method)
    with pytest.raises(IncludeOrderError, match=r"which sets 'data\.init_args\.batch_size'"):
        check_include_order(
            {"data": {"init_args": {"batch_size": 8}}, "config": "recipe.yaml"}, method
        )
    method.write_text(yaml.safe_dump(lost_after, sort_keys=False))
    with pytest.raises(SystemExit) as raised:  # the CLI's loader runs the check on every file
        run_cli("fit", "--config", method, "--print_config")
    assert raised.value.code != 0
    assert "would be silently lost" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [("--seed_everything", r"seed_everything=-1: a seed must be an integer in \[0, 4294967295\]"),
     ("--model.init_args.seed", r"seed=-1: a seed must be"),
     ("--data.init_args.seed", r"seed=-1: a seed must be")],
)  # fmt: skip
def test_a_negative_seed_is_refused_before_anything_is_built(option, message):
    with pytest.raises(ValueError, match=message):
        run_cli("fit", "--config", CONF / "mixup.yaml", option, "-1")
