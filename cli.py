"""Entry point: `python cli.py fit|validate|test|predict --config configs/...yaml`."""

from mixup_robust.cli import main

if __name__ == "__main__":
    main()
