"""The names result records share across measurements, and the check that names are unique.

Every measurement writes records keyed by name (a defense, an attack, a rung); the values
below are the fixed ones that figures and tables read back.
"""

CLEAN = "clean"
"""The `attack` of the records on unperturbed inputs (defense evaluation and audit)."""

LOCAL_LINEARITY = "local_linearity"
"""The `measure` of `LocalLinearityEvaluation`'s records."""

CORRUPTION = "corruption"
"""The `measure` of `CorruptionEvaluation`'s records."""


def check_unique_names(kind: str, names: list[str]) -> None:
    """Raises unless every name is unique: results are keyed by name (`kind` names the list)."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Two {kind}s share the name(s) {repeated}; give each a unique `name`.")
