"""Entry point: `python cli.py fit|validate|test|predict --config configs/...yaml`.

`python cli.py --help` says what the project is; `mixup_robust/launch.py` is the front door.
"""

from mixup_robust.launch import run

if __name__ == "__main__":
    run()
