"""Adaptive attacks: fresh draws, batched EOT gradients, fixed MI partners, and strength."""

import json

import pytest
import torch

from mixup_robust.attacks import EOTPGD, FreshDraws, MixupInferenceAdaptivePGD
from mixup_robust.defenses import ClassPool, MixupInference, MixupInferenceCombined
from mixup_robust.nets import SmallCNN
from tests.helpers.cli import CONF, run_cli


@pytest.fixture()
def mi_ol():
    torch.manual_seed(0)
    classifier = SmallCNN(1, 4, width=4).eval()
    images = (torch.arange(4 * 6 * 64) % 256).to(torch.uint8).view(24, 1, 8, 8)
    pool = ClassPool(images, torch.arange(24) % 4, 4)
    return MixupInference("other", mixup_ratio=0.5, n_executions=6).bind(classifier, pool, seed=3)


def batch(size: int = 5):
    generator = torch.Generator().manual_seed(1)
    return torch.rand(size, 1, 8, 8, generator=generator), torch.arange(size) % 4


def test_fresh_draw_changes_partners_and_restores_the_seed(mi_ol):
    predicted, index = torch.zeros(5, dtype=torch.long), torch.arange(5)
    scoring = mi_ol.partners(predicted, index)
    with mi_ol.fresh_draw(1):
        first = mi_ol.partners(predicted, index)
    with mi_ol.fresh_draw(2):
        second = mi_ol.partners(predicted, index)
    assert not torch.equal(first, scoring) and not torch.equal(first, second)
    assert torch.equal(mi_ol.partners(predicted, index), scoring) and mi_ol.seed == 3
    with mi_ol.fresh_draw(0):
        assert torch.equal(mi_ol.partners(predicted, index), scoring)


def test_fresh_draw_reaches_the_parts_of_a_composite_defense(mi_ol):
    combined = MixupInferenceCombined(n_executions=4).bind(mi_ol.classifier, mi_ol.pool, seed=5)
    seeds = (combined.mi_pl.seed, combined.mi_ol.seed)
    with combined.fresh_draw(7):
        assert (combined.mi_pl.seed, combined.mi_ol.seed) != seeds
    assert (combined.mi_pl.seed, combined.mi_ol.seed) == seeds


def test_batched_eot_gradient_equals_the_loop_over_draws(mi_ol):
    images, labels = batch()
    index = torch.arange(5)
    images.requires_grad_(True)
    executions = torch.arange(6)
    batched = EOTPGD.loss(mi_ol.execution_log_probs(images, index, executions), labels)
    batched_gradient = torch.autograd.grad(batched, images)[0]
    loop_gradient = torch.zeros_like(images)
    for execution in executions:
        single = mi_ol.execution_log_probs(images, index, execution.view(1))
        loop_gradient += torch.autograd.grad(EOTPGD.loss(single, labels), images)[0] / 6
    assert torch.allclose(batched_gradient, loop_gradient, atol=1e-6)
    assert batched_gradient.abs().sum() > 0


def test_execution_outputs_average_to_the_defense_output(mi_ol):
    images, _ = batch()
    per_execution = mi_ol.execution_log_probs(images, torch.arange(5), torch.arange(6))
    average = torch.logsumexp(per_execution, dim=1) - torch.log(torch.tensor(6.0))
    assert torch.allclose(average, mi_ol(images, torch.arange(5)), atol=1e-6)


def _recorded_partners(attack, defense, images, labels):
    seen = []
    original = defense.mixed_log_probs

    def record(batch_images, partners):
        seen.append(partners.clone())
        return original(batch_images, partners)

    defense.mixed_log_probs = record
    attack.against_defense(defense, images, labels, torch.arange(len(images)))
    del defense.mixed_log_probs
    return seen


def test_mi_adaptive_keeps_partners_and_eot_draws_new_ones(mi_ol):
    images, labels = batch()
    fixed = _recorded_partners(
        MixupInferenceAdaptivePGD(steps=3, n_samples=4), mi_ol, images, labels
    )
    assert len(fixed) == 3 and all(torch.equal(p, fixed[0]) for p in fixed)
    fresh = _recorded_partners(EOTPGD(steps=3, n_samples=4), mi_ol, images, labels)
    assert len(fresh) == 3 and not torch.equal(fresh[0], fresh[1])
    assert fixed[0].shape == (5, 4)


@pytest.mark.parametrize("attack_class", [EOTPGD, MixupInferenceAdaptivePGD])
def test_adaptive_pgd_respects_the_budget_and_modes(mi_ol, attack_class):
    images, labels = batch()
    mi_ol.classifier.train()
    adversarial = attack_class(eps="16/255", steps=4, n_samples=3).against_defense(
        mi_ol, images, labels, torch.arange(5)
    )
    assert (adversarial - images).abs().max() <= 16 / 255 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert mi_ol.classifier.training and not torch.equal(adversarial, images)
    with pytest.raises(TypeError, match="adaptive attack"):
        attack_class().perturb(mi_ol.classifier, images, labels)


@pytest.mark.parametrize("attack_class", [EOTPGD, MixupInferenceAdaptivePGD])
def test_the_loss_trace_holds_each_steps_loss_only_inside_its_block(mi_ol, attack_class):
    images, labels = batch()
    attack = attack_class(eps="16/255", steps=4, n_samples=3, random_start=False)
    with attack.traced_loss() as trace:
        attack.against_defense(mi_ol, images, labels, torch.arange(5))
    assert len(trace) == 4 and len(set(trace)) > 1
    if attack_class is EOTPGD:  # the first step's loss is that of the clean images
        copies = attack.copies_log_probs(mi_ol, images, torch.arange(5), torch.arange(3))
        with torch.no_grad():
            assert trace[0] == pytest.approx(float(attack.loss(copies(images, 0), labels)))
    attack.against_defense(mi_ol, images, labels, torch.arange(5))
    assert len(trace) == 4 and "_loss_trace" not in vars(attack)


def test_fresh_draws_wrapper_draws_anew_per_call(mi_ol):
    images, _ = batch()
    model = FreshDraws(mi_ol)
    first, second = model(images), model(images)
    assert not torch.allclose(first, second) and mi_ol.seed == 3
    assert torch.allclose(mi_ol(images), mi_ol(images))


@pytest.mark.slow
def test_adaptive_attacks_beat_the_oblivious_one_on_mi_ol(digits_checkpoint, tmp_path):
    output = tmp_path / "results"
    run_cli(
        "test", "--config", CONF / "evaluate_adaptive.yaml",
        "--model.init_args.checkpoint", digits_checkpoint,
        "--model.init_args.output_dir", output,
        "--trainer.default_root_dir", tmp_path / "logs",
        "--data.init_args.test_subset_size", 100,
    )  # fmt: skip
    records = json.loads((output / "results.json").read_text())
    accuracy = {(r["defense"], r["attack"]): r["accuracy"] for r in records}
    threat = {r["attack"]: r["threat_model"] for r in records}
    oblivious = accuracy[("MI-OL", "PGD-10")]
    for attack in ("MI-adaptive PGD-10 (N_A=10)", "EOT-PGD-10 (N_A=10)"):
        assert threat[attack] == "adaptive"
        assert accuracy[("MI-OL", attack)] <= oblivious
    assert threat["PGD-10 through the defense"] == "adaptive"


def test_copy_bounds_keep_each_mixed_input_in_range(mi_ol):
    images, _ = batch()
    attack = MixupInferenceAdaptivePGD(eps="64/255", n_samples=4)
    partners = attack._fixed_partners(mi_ol, images, torch.arange(5))
    low, high = attack._copy_bounds(mi_ol, images, partners)
    assert (low >= -64 / 255 - 1e-7).all() and (high <= 64 / 255 + 1e-7).all()
    assert (low <= 0).all() and (high >= 0).all()
    partner_images = mi_ol.pool.fetch(partners.reshape(-1)).view(5, 4, 1, 8, 8)
    for bound in (low, high):
        mixed = 0.5 * (images[:, None] + bound) + 0.5 * partner_images
        assert mixed.min() >= -1e-6 and mixed.max() <= 1 + 1e-6


def test_averaged_and_shared_perturbations_differ_and_stay_in_budget(mi_ol):
    images, labels = batch()
    results = {}
    for perturbation in ("average_over_copies", "shared"):
        attack = MixupInferenceAdaptivePGD(
            eps="32/255", steps=5, n_samples=4, perturbation=perturbation, random_start=False
        )
        results[perturbation] = attack.against_defense(mi_ol, images, labels, torch.arange(5))
        assert (results[perturbation] - images).abs().max() <= 32 / 255 + 1e-6
        assert results[perturbation].min() >= 0 and results[perturbation].max() <= 1
    assert not torch.equal(results["average_over_copies"], results["shared"])
