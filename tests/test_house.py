"""The rooms of `mixup_robust/` import each other only as docs/house.md allows."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mixup_robust"

# docs/house.md, "Rooms and what each may import".
ALLOWED = {
    "seeding": set(),
    "precision": set(),
    "atomic": set(),
    "mixing": set(),
    "trusted_imports": set(),
    "config_checks": {"seeding", "trusted_imports"},
    "nets": set(),
    "data": {"seeding", "atomic"},
    "attacks": {"precision"},
    "defenses": {"nets", "mixing", "seeding"},
    "training": {"nets", "attacks", "mixing", "seeding", "precision", "atomic"},
    "evaluation": {
        "nets",
        "attacks",
        "defenses",
        "seeding",
        "precision",
        "atomic",
        "training",
        "trusted_imports",
    },
    "cli": {"data", "training", "evaluation", "config_checks"},
    "threads": set(),
    "console": set(),
    "cli_help": set(),
    "launch": {"cli", "cli_help", "console", "threads"},
}
# evaluation reads training checkpoints, and nothing else of training.
EVALUATION_FILES_READING_TRAINING = {"checkpoint.py"}

# docs/house.md, "The evaluation wing": the shared base modules, and one sub-package per
# measurement. A sub-package imports the base and itself; the base imports no sub-package.
EVALUATION = PACKAGE / "evaluation"
EVALUATION_BASE = {
    "binding", "checkpoint", "data_contracts", "external", "figures", "measurement", "names",
    "predictions", "progress", "redraw", "run_files", "run_guard", "run_store", "stop_signals",
    "store",
    "trials",
}  # fmt: skip
EVALUATION_ROOMS = {"audit", "corruption", "defense", "linearity"}


def _room(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mixup_robust" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


def _package_files() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.name != "__init__.py")


def test_every_room_is_on_the_map():
    rooms = {_room(path) for path in _package_files()}
    assert rooms == set(ALLOWED), "add a new room to docs/house.md and to ALLOWED"


# One test per file, named by its path in the package (the same on every machine).
@pytest.mark.parametrize("path", _package_files(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_a_room_imports_only_what_the_map_allows(path):
    room = _room(path)
    imported = _imported_rooms(path) - {room}
    forbidden = imported - ALLOWED[room]
    assert not forbidden, f"{path.relative_to(PACKAGE)} ({room}) imports {sorted(forbidden)}"
    if room == "evaluation" and "training" in imported:
        assert path.name in EVALUATION_FILES_READING_TRAINING, path.name


def _evaluation_room(path: Path) -> str:
    """'base' for a module of evaluation/, else the name of its sub-package."""
    parts = path.relative_to(EVALUATION).parts
    return "base" if len(parts) == 1 else parts[0]


def _evaluation_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(room imported, names imported) of each import of an evaluation module.

    The room is 'base', a sub-package, or 'evaluation' for the package itself (its __init__).
    """
    imports = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules, names = [node.module], [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [alias.name for alias in node.names], []
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[:2] != ["mixup_robust", "evaluation"]:
                continue
            if len(parts) == 2:
                imports.append(("evaluation", names))
            else:
                imports.append((parts[2] if parts[2] in EVALUATION_ROOMS else "base", names))
    return imports


def _evaluation_files() -> list[Path]:
    return [path for path in _package_files() if path.is_relative_to(EVALUATION)]


def test_every_evaluation_room_is_on_the_map():
    rooms = {_evaluation_room(path) for path in _evaluation_files()} - {"base"}
    base = {path.stem for path in EVALUATION.glob("*.py") if path.name != "__init__.py"}
    assert rooms == EVALUATION_ROOMS, "add a new measurement's sub-package to docs/house.md"
    assert base == EVALUATION_BASE, "add a new base module of evaluation to docs/house.md"


@pytest.mark.parametrize(
    "path", _evaluation_files(), ids=lambda path: str(path.relative_to(PACKAGE))
)
def test_an_evaluation_room_imports_the_base_and_itself_only(path):
    room = _evaluation_room(path)
    allowed = {"base"} if room == "base" else {"base", room}
    if path.name == "redraw.py":  # a command that nothing imports: redraws a defense's figures
        allowed = {"base", "defense"}
    for imported, names in _evaluation_imports(path):
        assert imported in allowed, f"{path.relative_to(PACKAGE)} ({room}) imports {imported}"
        private = [name for name in names if name.startswith("_")]
        assert not private, f"{path.relative_to(PACKAGE)} imports private {private}"


def test_the_map_catches_a_forbidden_import(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("from mixup_robust.training.base import ClassifierModule\n")
    assert _imported_rooms(stray) - ALLOWED["nets"] == {"training"}


def test_the_evaluation_map_catches_a_sibling_and_a_private_import(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        "from mixup_robust.evaluation.defense.module import bind_defenses\n"
        "from mixup_robust.evaluation.figures import _save\n"
        "import mixup_robust.evaluation\n"
    )
    assert _evaluation_imports(stray) == [
        ("defense", ["bind_defenses"]), ("base", ["_save"]), ("evaluation", [])
    ]  # fmt: skip
