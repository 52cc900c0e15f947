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


def test_the_map_catches_a_forbidden_import(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("from mixup_robust.training.base import ClassifierModule\n")
    assert _imported_rooms(stray) - ALLOWED["nets"] == {"training"}
