"""The Trainer's plumbing that `cli.py` wires into every run, apart from the training methods.

Run guards (`FiniteTraining`), `last.ckpt` after every epoch and at a SIGTERM
(`LastCheckpoint`), SLURM pre-emption (`PreemptionCheckpoint`), progress bars (`RichBar`,
`ThrottledProgressBar`), atomic checkpoint files (`AtomicCheckpointIO`), an honest resume
(`RunSettings`, `resume_check`), the run's `config.yaml` (`RequeueSafeSaveConfig`) and no
empty run directory after a refusal (`RefusalCleanup`). It imports `checkpoints` and `atomic`
only; what it needs of a training method is a declared Protocol (`ResumableOptimization`).
"""

from mixup_robust.run.checkpoint_io import AtomicCheckpointIO, CheckpointNoSpaceError
from mixup_robust.run.guards import FiniteTraining
from mixup_robust.run.last_checkpoint import LastCheckpoint
from mixup_robust.run.preemption import PreemptionCheckpoint
from mixup_robust.run.progress_bar import RichBar, ThrottledProgressBar
from mixup_robust.run.refusal import RefusalCleanup
from mixup_robust.run.run_settings import ResumableOptimization, RunSettings
from mixup_robust.run.saved_config import RequeueSafeSaveConfig

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointNoSpaceError",
    "FiniteTraining",
    "LastCheckpoint",
    "PreemptionCheckpoint",
    "RefusalCleanup",
    "RequeueSafeSaveConfig",
    "ResumableOptimization",
    "RichBar",
    "RunSettings",
    "ThrottledProgressBar",
]
