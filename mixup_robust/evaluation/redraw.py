"""Redraws an evaluation's figures: `python -m mixup_robust.evaluation.redraw results.json`.

The same as `python -m mixup_robust.evaluation.plots`, without runpy's RuntimeWarning: the
package imports `plots` (an evaluation draws its figures), so running `plots` itself as a
module finds it already imported. Nothing imports this module, so it runs cleanly.
"""

from mixup_robust.evaluation.plots import main

if __name__ == "__main__":
    main()
