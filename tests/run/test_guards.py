"""Training stops on what would give garbage: non-finite losses or weights, a changed run length."""

import pytest
import torch

from mixup_robust.data import DigitsDataModule
from mixup_robust.run.guards import FiniteTraining, NonFiniteLossError, NonFiniteWeightsError
from tests.helpers.cli import fit_digits, last_checkpoint


# ---------------------------------------------------------------- 1. non-finite loss
def test_non_finite_loss_stops_training_and_no_checkpoint_holds_it(tmp_path):
    lr = "model.init_args.optimizer.init_args.lr"
    with pytest.raises(NonFiniteLossError, match=rf"epoch 0, batch \d+ .*{lr}"):
        fit_digits(tmp_path, "mixup", 2, f"--{lr}", "1e6")
    for checkpoint in tmp_path.rglob("*.ckpt"):  # none at all, or only finite ones
        state = torch.load(checkpoint, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_checkpoint_of_non_finite_weights_is_never_written():
    checkpoint = {"state_dict": {"w": torch.tensor([1.0, float("nan")]), "steps": torch.ones(1)}}
    with pytest.raises(NonFiniteWeightsError, match="NaN or inf"):
        FiniteTraining().on_save_checkpoint(_FakeTrainer(), None, checkpoint)


class _FakeTrainer:
    current_epoch, global_step = 3, 120


# ---------------------------------------------------------------- 6. schedule length
def test_extending_a_finished_cosine_run_is_refused(tmp_path, mixup_one_epoch):
    """Also when the resume accepts another max_epochs: a cosine cannot be stretched."""
    finished = mixup_one_epoch  # fit_digits(root, "mixup", 1)
    with pytest.raises(ValueError, match=r"max_epochs=1.*max_epochs=2.*--trainer.max_epochs 1"):
        fit_digits(tmp_path / "two", "mixup", 2, "--ckpt_path", finished,
                   "--resume_overrides", "max_epochs")  # fmt: skip
    assert not list((tmp_path / "two").rglob("*.ckpt"))


def test_a_run_resumes_with_the_same_length(tmp_path, mixup_first_epoch):
    """The length check refuses only a different max_epochs (a resume with the same one runs)."""
    steps_per_epoch = len(DigitsDataModule(batch_size=64, val_size=0.1).train_dataloader())
    first = mixup_first_epoch  # fit_digits(root, "mixup", 2, "--trainer.max_steps", steps...)
    fit_digits(tmp_path, "mixup", 2, "--ckpt_path", first, "--resume_overrides", "max_steps")
    resumed = torch.load(last_checkpoint(tmp_path), weights_only=True)
    assert resumed["global_step"] == 2 * steps_per_epoch


class _FakeStrategy:
    @staticmethod
    def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:
        return decision


class _FakeLoopTrainer:
    current_epoch, global_step, optimizers = 2, 0, []
    strategy = _FakeStrategy()


def test_a_deferred_loss_check_names_the_first_non_finite_step():
    guard, trainer = FiniteTraining(every_n_steps=4), _FakeLoopTrainer()
    losses = [1.0, 0.5, float("nan"), 2.0]
    for batch_idx, loss in enumerate(losses[:3]):
        trainer.global_step = batch_idx
        guard.on_train_batch_end(trainer, None, torch.tensor(loss), None, batch_idx)
    # Nothing read yet (no sync): the fourth step reads all four and names the third.
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 2 \(optimizer step 2\)"):
        guard.on_train_batch_end(trainer, None, torch.tensor(losses[3]), None, 3)


def test_a_checkpoint_save_reads_the_pending_losses_first():
    guard, trainer = FiniteTraining(every_n_steps=50), _FakeLoopTrainer()
    guard.on_train_batch_end(trainer, None, torch.tensor(float("inf")), None, 0)
    checkpoint = {"state_dict": {"w": torch.ones(2)}}
    with pytest.raises(NonFiniteLossError, match="batch 0"):
        guard.on_save_checkpoint(trainer, None, checkpoint)
