"""Realistic result records and audit summaries with the longest real names, for the tables'
and figures' layout tests (no model is run)."""

from mixup_robust.evaluation.audit.red_flags import RedFlag, RungSpec
from mixup_robust.evaluation.audit.summary import AuditSummary, Estimate

CHECKPOINT = "runs/quickstart/mixup/lightning_logs/version_0/checkpoints/last.ckpt"

# The defenses of configs/quickstart/evaluate_full.yaml and audit.yaml, by their real names.
DEFENSES = [
    "none", "MI-PL", "MI-OL", "MI-Combined", "Gaussian noise 0.1", "Rotation 30",
    "Xie et al. 2018", "Guo et al. 2018",
]  # fmt: skip
# The rungs of configs/eval/cifar10_audit.yaml (CIFAR-10), the longest ladder shipped.
CIFAR_RUNGS = [
    "PGD-10", "PGD-100 transfer",
    *[f"EOT-PGD-{steps} (N_A={n})" for steps in (10, 50, 200) for n in (1, 10, 30)],
    "MI-adaptive PGD-50 (N_A=30)", "AutoAttack (rand)", "Square-5000",
]  # fmt: skip
# The rungs of configs/quickstart/audit.yaml.
DIGITS_RUNGS = [
    "PGD-10", "PGD-50 transfer", "EOT-PGD-10 (N_A=1)", "EOT-PGD-10 (N_A=10)",
    "EOT-PGD-30 (N_A=1)", "EOT-PGD-30 (N_A=10)", "MI-adaptive PGD-20 (N_A=10)",
    "AutoAttack (rand)", "Square-100",
]  # fmt: skip
# configs/quickstart/evaluate_full.yaml's attacks and its MI-OL sweep.
FULL_ATTACKS = ["PGD-10", "PGD-10 (targeted, random)", "PGD-20 (eps 48/255)"]
SWEEP = [0.3, 0.4, 0.5, 0.6, 0.7]


def evaluation_records(
    defenses: list[str] = DEFENSES, attacks: list[str] = FULL_ATTACKS, sweep: bool = True
) -> list[dict]:
    """Records as DefenseEvaluation writes them: clean with ECE, attacks with AUROC.

    `none` and `MI-PL` get the same accuracy everywhere (as on the quickstart model), and
    `none` lies at 0 % under the last attack.
    """
    rows = [(d, {}) for d in defenses]
    if sweep:
        rows += [
            (f"MI-OL mixup_ratio={v}", {"sweep": "MI-OL", "parameter": "mixup_ratio", "value": v})
            for v in SWEEP
        ]
    records = []
    for a, attack in enumerate(["clean", *attacks]):
        for d, (defense, fields) in enumerate(rows):
            accuracy = 0.986 if attack == "clean" else max(0.0, 0.4 - 0.15 * a + 0.03 * d)
            if defense in ("none", "MI-PL"):
                accuracy = 0.986 if attack == "clean" else (0.0 if a == len(attacks) else 0.033)
            extra = {"ece": 0.031} if attack == "clean" else {"auroc": 0.5 + 0.01 * d}
            records.append({
                "defense": defense, "attack": attack,
                "threat_model": "none" if attack == "clean" else "oblivious", "n": 359,
                "accuracy": accuracy, **extra, **fields, "checkpoint": CHECKPOINT,
            })  # fmt: skip
    return records


def _estimate(value: float, total: int, trials: int) -> Estimate:
    spread = [0.0, 0.02, -0.01][:trials]
    return Estimate([min(1.0, max(0.0, value + s)) for s in spread], total)


def audit_summaries(
    rungs: list[str] = CIFAR_RUNGS, defenses: list[str] = DEFENSES, trials: int = 2
) -> list[AuditSummary]:
    """One summary per defense as the audit builds them; MI-OL carries a red flag."""
    specs = [RungSpec(name, "oblivious" if k < 2 else "white-box") for k, name in enumerate(rungs)]
    summaries = []
    for d, defense in enumerate(defenses):
        count = 1 if defense == "none" else trials
        cumulative = [_estimate(0.98, 150, count)] + [
            _estimate(max(0.0, 0.4 - 0.05 * k + 0.01 * d), 150, count) for k in range(len(rungs))
        ]
        flags = []
        if defense == "MI-OL":
            flags = [RedFlag("stronger attack raises accuracy", rungs[3], "27 % > 14 %", 0.01)]
        summaries.append(AuditSummary(
            defense=defense, rungs=specs, clean=cumulative[0],
            own=[_estimate(0.3, 15, count) for _ in rungs], cumulative=cumulative,
            attacked=[150] * len(rungs), seconds=[1.0] * len(rungs), strongest=rungs[-3],
            versus_none=("baseline", 1.0) if d == 0 else
            [("within noise", 1.0), ("better", 1.2e-10), ("worse", 0.0078)][d % 3],
            unbounded=_estimate(0.0, 15, count), flags=flags,
        ))  # fmt: skip
    return summaries
