"""Sweeping one parameter of a defense over a list of values in one evaluation run."""

import copy

from mixup_robust.defenses import Defense


class ParameterSweep:
    """One defense evaluated at every value of one of its parameters.

    Args:
        defense: the defense to copy (class_path and init_args in YAML).
        parameter: the attribute to vary, e.g. `mixup_ratio`, `sigma`, `max_degrees`.
        values: the values; each copy is named `<defense name> <parameter>=<value>`.
    """

    def __init__(self, defense: Defense, parameter: str, values: list[float]) -> None:
        if not hasattr(defense, parameter) or callable(getattr(defense, parameter)):
            raise ValueError(
                f"{type(defense).__name__} has no parameter {parameter!r} to sweep; "
                "use one of its constructor arguments (e.g. mixup_ratio, sigma)."
            )
        if not values:
            raise ValueError(f"The sweep of {parameter!r} needs at least one value.")
        self.defense, self.parameter, self.values = defense, parameter, list(values)

    def expand(self) -> list[tuple[Defense, dict]]:
        """The defense at each value, with the fields its result records carry."""
        expanded = []
        for value in self.values:
            defense = copy.deepcopy(self.defense)
            setattr(defense, self.parameter, value)
            defense._name = f"{self.defense.name} {self.parameter}={value}"
            fields = {"sweep": self.defense.name, "parameter": self.parameter, "value": value}
            expanded.append((defense, fields))
        return expanded
