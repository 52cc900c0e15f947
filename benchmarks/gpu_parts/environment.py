"""The machine and software a suite run measured: GPU, driver, torch, CUDA, cuDNN, versions."""

import os
import platform
import subprocess
from pathlib import Path

import lightning
import torch
import torchattacks

REPO = Path(__file__).resolve().parents[2]


def _command(*command: str) -> str | None:
    """The stripped output of `command`, or None when it cannot run (no nvidia-smi, no git)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def environment(device: torch.device) -> dict:
    """What was measured on: the device, versions, the TF32 settings, the load."""
    info = {
        "device": str(device), "python": platform.python_version(), "torch": torch.__version__,
        "CUDA (torch build)": torch.version.cuda,
        "cuDNN": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "lightning": lightning.__version__, "torchattacks": torchattacks.__version__,
        "platform": platform.platform(), "CPU cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "load average (1/5/15 min) at start": "/".join(f"{v:.2f}" for v in os.getloadavg()),
        "git commit": _command("git", "rev-parse", "--short", "HEAD"),
        "TF32 matmul / cuDNN": f"{torch.backends.cuda.matmul.allow_tf32} / "
        f"{torch.backends.cudnn.allow_tf32}",
    }  # fmt: skip
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update({
            "GPU": properties.name, "compute capability": f"{properties.major}.{properties.minor}",
            "GPU memory GiB": round(properties.total_memory / 2**30, 1),
            "driver (nvidia-smi)": _command("nvidia-smi", "--query-gpu=driver_version",
                                            "--format=csv,noheader"),
            "CUDA devices": torch.cuda.device_count(),
        })  # fmt: skip
    return info
