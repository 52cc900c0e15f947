"""Redraws an evaluation's figures: `python -m mixup_robust.evaluation.redraw results.json`.

The same as `python -m mixup_robust.evaluation.defense.figures`, without runpy's RuntimeWarning:
the package imports that module (an evaluation draws its figures), so running it as a module
finds it already imported. Nothing imports this module, so it runs cleanly.
"""

from mixup_robust.evaluation.defense.figures import main

if __name__ == "__main__":
    main()
