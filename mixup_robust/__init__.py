"""mixup_robust: mixup-based adversarial robustness with PyTorch Lightning."""

__version__ = "0.1.0"
