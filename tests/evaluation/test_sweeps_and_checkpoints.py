"""Swept defense parameters are validated, and measurements refuse checkpoints they cannot trust."""

import pytest
import torch

from mixup_robust.defenses import MixupInference, RandomRotation
from mixup_robust.evaluation import ParameterSweep, load_classifier


def test_measurements_refuse_a_checkpoint_with_non_finite_weights(digits_checkpoint, tmp_path):
    contents = torch.load(digits_checkpoint, weights_only=True)
    name = next(k for k in contents["state_dict"] if k.endswith("weight"))
    contents["state_dict"][name][0] = float("inf")
    broken = tmp_path / "diverged.ckpt"
    torch.save(contents, broken)
    with pytest.raises(ValueError, match="non-finite weights"):
        load_classifier(str(broken))


# ---------------------------------------------------------------- 2. sweeps
@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [("mixup_ratio", 1.5, r"must lie in \[0, 1\]"), ("mixup_ratio", -2, r"must lie in \[0, 1\]"),
     ("n_executions", 0, "at least 1")],
)  # fmt: skip
def test_swept_values_are_validated_by_the_constructor(parameter, value, message):
    with pytest.raises(ValueError, match=f"invalid value {value}.*{message}"):
        ParameterSweep(MixupInference("other", 0.5, 30), parameter, [0.5, value])


def test_a_sweep_builds_each_variant_with_the_other_arguments_kept():
    base = MixupInference("predicted", 0.5, n_executions=7, chunk_size=99)
    variants = ParameterSweep(base, "mixup_ratio", [0.2, 0.8]).expand()
    assert [v.mixup_ratio for v, _ in variants] == [0.2, 0.8]
    assert all((v.partner_label, v.n_executions, v.chunk_size) == ("predicted", 7, 99)
               for v, _ in variants)  # fmt: skip
    assert [v.name for v, _ in variants] == ["MI-PL mixup_ratio=0.2", "MI-PL mixup_ratio=0.8"]
    assert variants[1][1] == {"sweep": "MI-PL", "parameter": "mixup_ratio", "value": 0.8}
    with pytest.raises(ValueError, match="no parameter 'sigma'"):
        ParameterSweep(RandomRotation(), "sigma", [1.0])


def test_a_text_file_is_not_a_checkpoint_and_weights_only_is_never_suggested(tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("epoch 3: loss 0.12\n")
    with pytest.raises(ValueError, match="is not a checkpoint") as raised:
        load_classifier(str(text))
    assert "weights_only" not in str(raised.value)
