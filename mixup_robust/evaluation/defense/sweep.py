"""Sweeping one parameter of a defense over a list of values in one evaluation run."""

import inspect

from mixup_robust.defenses import Defense


def constructor_arguments(defense: Defense) -> dict:
    """The arguments that rebuild `defense`, read from its same-named attributes.

    Raises:
        ValueError: an argument is not kept as an attribute, so the defense cannot be rebuilt
            with one value changed (and a sweep could not be validated by its constructor).
    """
    arguments = {}
    parameters = inspect.signature(type(defense).__init__).parameters
    for name, parameter in list(parameters.items())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name == "name":
            arguments[name] = defense._name
        elif name in vars(defense) or name in defense._modules:
            arguments[name] = getattr(defense, name)
        else:
            raise ValueError(
                f"{type(defense).__name__} cannot be swept: its argument {name!r} is not kept "
                "as an attribute of the same name, so it cannot be rebuilt with one value "
                "changed. List the variants as separate defenses instead."
            )
    return arguments


class ParameterSweep:
    """One defense evaluated at every value of one of its parameters.

    Every variant is built by the defense's constructor, so each swept value is validated
    exactly as a configured one, when the sweep is created, before any compute.

    Args:
        defense: the defense to vary (class_path and init_args in YAML).
        parameter: the constructor argument to vary, e.g. `mixup_ratio`, `sigma`.
        values: the values; each variant is named `<defense name> <parameter>=<value>`.
    """

    def __init__(self, defense: Defense, parameter: str, values: list[float]) -> None:
        arguments = constructor_arguments(defense)
        if parameter not in arguments or parameter == "name":
            raise ValueError(
                f"{type(defense).__name__} has no parameter {parameter!r} to sweep; use one of "
                f"its constructor arguments: {', '.join(a for a in arguments if a != 'name')}."
            )
        if not values:
            raise ValueError(f"The sweep of {parameter!r} needs at least one value.")
        self.defense, self.parameter, self.values = defense, parameter, list(values)
        self.variants = [self._build(arguments, value) for value in self.values]

    def _build(self, arguments: dict, value: float) -> Defense:
        name = f"{self.defense.name} {self.parameter}={value}"
        try:
            return type(self.defense)(**{**arguments, self.parameter: value, "name": name})
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"The sweep of {self.defense.name}'s {self.parameter} has an invalid value "
                f"{value!r}: {error}"
            ) from None

    def expand(self) -> list[tuple[Defense, dict]]:
        """The defense at each value, with the fields its result records carry."""
        fields = {"sweep": self.defense.name, "parameter": self.parameter}
        return [
            (variant, {**fields, "value": value})
            for variant, value in zip(self.variants, self.values, strict=True)
        ]
