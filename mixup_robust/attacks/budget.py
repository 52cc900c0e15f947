"""Attack budgets written as pixel fractions ("8/255") or plain floats."""

from fractions import Fraction

Budget = float | str


def parse_budget(value: Budget, name: str = "budget") -> float:
    """Returns a budget in [0, 1] pixel units from a float or a string such as "8/255"."""
    try:
        number = float(Fraction(value.replace(" ", ""))) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"{name}={value!r} is not a number or a fraction like '8/255'.") from None
    if not 0 <= number <= 1:
        raise ValueError(
            f"{name}={value!r} is {number:.4f} in pixel units; it must lie in [0, 1] "
            "(images are in [0, 1], so write 8/255 rather than 8)."
        )
    return number
