"""Red flags of an adversarial evaluation (Carlini et al. 2019; Athalye et al. 2018).

Each rule reads the counts of one defense's audit and returns the flags it raises. Rules
that compare two attacks use the *full-ladder* samples, on which every rung ran, so that
the comparison is paired (same samples, same defense draws). A difference raises a flag only
when it exceeds a tolerance AND a one-sided exact McNemar test rejects "no difference" at
`alpha`: noise alone does not raise flags (the cost is power on small full-ladder sets).
"""

from dataclasses import dataclass, field

from mixup_robust.evaluation.audit.statistics import mcnemar_exact, wilson_interval

WHITE_BOX = "white-box"
GRADIENT_FREE = "gradient-free"
OBLIVIOUS = "oblivious"


@dataclass
class RedFlagThresholds:
    """When a rule fires (fractions of samples; nats for the loss).

    Args:
        tolerance: smallest accuracy difference that counts (0.02 = 2 points).
        alpha: significance level of the one-sided exact McNemar tests.
        unbounded_max_accuracy: accuracy an eps = 1 attack must bring the defense below; the
            flag fires when the Wilson interval's lower end is above it.
        min_loss_rise: smallest rise of the mean per-sample loss from the first to the last
            PGD step that shows the attack's gradient steps work.
    """

    tolerance: float = 0.02
    alpha: float = 0.05
    unbounded_max_accuracy: float = 0.05
    min_loss_rise: float = 0.01


@dataclass
class RungSpec:
    """What the rules need to know of a rung: its name, kind and EOT strength, if any."""

    name: str
    kind: str  # WHITE_BOX, GRADIENT_FREE or OBLIVIOUS
    family: tuple | None = None  # (class name, eps, step) of EOT-PGD-like rungs, comparable
    steps: int = 0
    n_samples: int = 0


@dataclass
class LadderCounts:
    """Summed counts of one defense's audit (over batches, ranks and trials).

    Index 0 of `correct` and `pairs` is the clean input, index k the k-th rung.

    Attributes:
        full_ladder_samples: samples (x trials) on which every rung ran.
        correct: (K + 1) counts of right answers on those samples.
        pairs: (K + 1) x (K + 1); pairs[i][j] counts samples right under i and wrong under j.
        loss_rise: per rung, (sum over samples of last-step minus first-step loss, samples),
            for rungs whose loss is traced; None otherwise.
        unbounded: (right answers, samples) under the eps = 1 probe; None if not run.
    """

    full_ladder_samples: int
    correct: list[int]
    pairs: list[list[int]]
    loss_rise: list[tuple[float, int] | None]
    unbounded: tuple[int, int] | None = None


@dataclass
class RedFlag:
    """One raised flag: the rule, the rung it concerns and what was seen."""

    rule: str
    rung: str
    message: str
    p_value: float | None = field(default=None)

    def __str__(self) -> str:
        return f"{self.rule} [{self.rung}]: {self.message}"


def _significantly_higher(
    counts: LadderCounts, high: int, low: int, thresholds: RedFlagThresholds
) -> tuple[bool, float, float]:
    """Is accuracy under `high` above that under `low`? (verdict, difference, p-value)."""
    n = counts.full_ladder_samples
    if n == 0:
        return False, 0.0, 1.0
    only_high, only_low = counts.pairs[high][low], counts.pairs[low][high]
    difference = (only_high - only_low) / n
    p_value = mcnemar_exact(only_high, only_low, alternative="greater")
    return difference > thresholds.tolerance and p_value < thresholds.alpha, difference, p_value


def stronger_attack_raises_accuracy(
    rungs: list[RungSpec], counts: LadderCounts, thresholds: RedFlagThresholds
) -> list[RedFlag]:
    """Accuracy rises when steps or N_A rise (same attack, same budget): the attack is broken."""
    flags = []
    for a, weak in enumerate(rungs, start=1):
        for b, strong in enumerate(rungs, start=1):
            stronger = (strong.steps, strong.n_samples) != (weak.steps, weak.n_samples)
            if not (weak.family and weak.family == strong.family and stronger):
                continue
            if strong.steps < weak.steps or strong.n_samples < weak.n_samples:
                continue
            raised, difference, p_value = _significantly_higher(counts, b, a, thresholds)
            if raised:
                flags.append(RedFlag(
                    "stronger attack raises accuracy", strong.name,
                    f"{100 * difference:+.1f} points over {weak.name} (p = {p_value:.3g})",
                    p_value,
                ))  # fmt: skip
    return flags


def weaker_threat_model_beats_white_box(
    rungs: list[RungSpec], counts: LadderCounts, thresholds: RedFlagThresholds
) -> list[RedFlag]:
    """A gradient-free or transfer (oblivious) attack beats the best white-box one."""
    white_box = [k for k, rung in enumerate(rungs, start=1) if rung.kind == WHITE_BOX]
    if not white_box:
        return []
    best = min(white_box, key=lambda k: counts.correct[k])
    flags = []
    for k, rung in enumerate(rungs, start=1):
        if rung.kind == WHITE_BOX:
            continue
        lower, difference, p_value = _significantly_higher(counts, best, k, thresholds)
        if lower:
            flags.append(RedFlag(
                f"{rung.kind} attack beats white-box", rung.name,
                f"{100 * difference:.1f} points below {rungs[best - 1].name} (p = {p_value:.3g})",
                p_value,
            ))  # fmt: skip
    return flags


def unbounded_attack_leaves_accuracy(
    rungs: list[RungSpec], counts: LadderCounts, thresholds: RedFlagThresholds
) -> list[RedFlag]:
    """An attack with eps = 1 (any image allowed) leaves accuracy well above zero."""
    if counts.unbounded is None or counts.unbounded[1] == 0:
        return []
    right, total = counts.unbounded
    low, _ = wilson_interval(right, total)
    if low <= thresholds.unbounded_max_accuracy:
        return []
    return [RedFlag(
        "unbounded attack leaves accuracy", "eps = 1",
        f"{100 * right / total:.1f} % right (95 % CI from {100 * low:.1f}) with eps = 1",
    )]  # fmt: skip


def loss_does_not_rise(
    rungs: list[RungSpec], counts: LadderCounts, thresholds: RedFlagThresholds
) -> list[RedFlag]:
    """The attacked loss does not rise from the first to the last PGD step."""
    flags = []
    for rung, traced in zip(rungs, counts.loss_rise, strict=True):
        if traced is None or traced[1] == 0 or rung.steps < 2:
            continue
        rise = traced[0] / traced[1]
        if rise < thresholds.min_loss_rise:
            flags.append(RedFlag(
                "loss does not rise", rung.name,
                f"mean loss rose by {rise:.4f} nats over {rung.steps} steps",
            ))  # fmt: skip
    return flags


def attack_above_clean(
    rungs: list[RungSpec], counts: LadderCounts, thresholds: RedFlagThresholds
) -> list[RedFlag]:
    """Accuracy under an attack is above clean accuracy."""
    flags = []
    for k, rung in enumerate(rungs, start=1):
        raised, difference, p_value = _significantly_higher(counts, k, 0, thresholds)
        if raised:
            flags.append(RedFlag(
                "accuracy under attack above clean", rung.name,
                f"{100 * difference:+.1f} points over clean (p = {p_value:.3g})", p_value,
            ))  # fmt: skip
    return flags


RULES = (
    stronger_attack_raises_accuracy,
    weaker_threat_model_beats_white_box,
    unbounded_attack_leaves_accuracy,
    loss_does_not_rise,
    attack_above_clean,
)


def red_flags(
    rungs: list[RungSpec], counts: LadderCounts, thresholds: RedFlagThresholds
) -> list[RedFlag]:
    """Every flag of every rule, in the order of `RULES`."""
    return [flag for rule in RULES for flag in rule(rungs, counts, thresholds)]
