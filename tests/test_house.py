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
    "checkpoints": {"nets", "trusted_imports"},
    "data": {"seeding", "atomic"},
    "attacks": {"precision"},
    "defenses": {"nets", "checkpoints", "mixing", "seeding"},
    "run": {"checkpoints", "atomic"},
    "training": {
        "nets",
        "checkpoints",
        "run",
        "attacks",
        "mixing",
        "seeding",
        "precision",
        "atomic",
    },
    "evaluation": {"nets", "checkpoints", "attacks", "defenses", "seeding", "precision", "atomic"},
    "cli": {"data", "training", "evaluation", "run", "config_checks"},
    "threads": set(),
    "console": set(),
    "cli_help": set(),
    "launch": {"cli", "cli_help", "console", "threads"},
}

# docs/house.md, "The evaluation wing": the shared base modules, and one sub-package per
# measurement. A sub-package imports the base and itself; the base imports no sub-package.
EVALUATION = PACKAGE / "evaluation"
EVALUATION_BASE = {
    "binding", "console_tables", "data_contracts", "figures", "intervals", "measurement", "names",
    "predictions", "progress", "redraw", "run_files", "run_guard", "run_store", "stop_signals",
    "store", "trials",
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


def test_the_rooms_import_each_other_without_a_cycle():
    remaining = {room: set(allowed) for room, allowed in ALLOWED.items()}
    while remaining:
        leaves = [room for room, allowed in remaining.items() if not allowed & set(remaining)]
        assert leaves, f"the map has a cycle among {sorted(remaining)}"
        for room in leaves:
            del remaining[room]


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` names in an import (a submodule, else its package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules


def import_circles(package: Path = PACKAGE) -> list[list[str]]:
    """The package's import circles: each a set of modules that import each other, in any way
    (`TYPE_CHECKING` and function-level imports included; a package's `__init__` counts as the
    package's module, and a module is not taken to import its parent package)."""
    files = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph = {name: _module_imports(path, set(files)) - {name} for name, path in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(name: str) -> None:  # Tarjan's strongly connected components
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in graph[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while not component or component[-1] != name:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_no_module_imports_itself_through_others():
    assert import_circles() == []


def test_the_circle_finder_finds_a_circle(tmp_path):
    package = tmp_path / "mixup_robust"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from mixup_robust.b import x\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from mixup_robust import a\n")  # fmt: skip
    (package / "c.py").write_text("import mixup_robust.a\n")
    assert import_circles(package) == [["mixup_robust.a", "mixup_robust.b"]]


@pytest.mark.parametrize("path", _package_files(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mixup_robust"):
            private = [
                alias.name
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.endswith("__")
            ]
            assert not private, f"{path.relative_to(PACKAGE)} imports private {private}"
