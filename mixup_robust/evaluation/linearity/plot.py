"""Draws local linearity error against eps from results files (the VarMixup paper's Fig. 4).

python -m mixup_robust.evaluation.linearity.plot mixup/results.json varmixup/results.json \
    --labels Mixup VarMixup --out local_linearity.png

The same as running `mixup_robust.evaluation.linearity.figures`, without runpy's
RuntimeWarning: the package imports that module (a run draws its figure), so running it as a
module finds it already imported. Nothing imports this module, so it runs cleanly.
"""

from mixup_robust.evaluation.linearity.figures import main

if __name__ == "__main__":
    main()
