"""The audit's summed counts per defense: sum states, exact under DDP."""

import torch
from torchmetrics import Metric
from typing_extensions import override


class AuditCounts(Metric):
    """Summed counts of one defense's audit, one row per trial (sum states: exact under DDP)."""

    full_state_update = False

    def __init__(self, trials: int, n_rungs: int) -> None:
        super().__init__()
        steps = n_rungs + 1
        shapes = {
            "samples": (trials, 2), "cumulative": (trials, steps),
            "full_correct": (trials, steps), "pairs": (trials, steps, steps),
            "attacked": (trials, n_rungs), "loss": (trials, n_rungs, 2),
            "unbounded": (trials, 2), "versus_none": (trials, 2),
            "seconds": (trials, n_rungs),
        }  # fmt: skip
        self.shapes = shapes
        for name, shape in shapes.items():
            self.add_state(name, torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")

    @override
    def update(self, trial: int, counts: dict[str, torch.Tensor]) -> None:
        for name, value in counts.items():
            state = getattr(self, name)
            state[trial] += value.to(state.device, state.dtype)

    @override
    def compute(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).cpu() for name in self.shapes}

    def totals(self) -> dict[str, torch.Tensor]:
        """The synced states in their shapes (compute() squeezes one-element tensors)."""
        return {name: value.reshape(self.shapes[name]) for name, value in self.compute().items()}
