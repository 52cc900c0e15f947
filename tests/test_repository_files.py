"""The repository's text files hold no unresolved merge: a conflict marker must never land."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".sh", ".sbatch", ".txt"}
SKIPPED = {".git", ".ci-venv", "runs", "node_modules", ".gpu_data"}
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def _text_files() -> list[Path]:
    return [
        path
        for path in REPO.rglob("*")
        if path.suffix in TEXT
        and path.is_file()
        and not SKIPPED.intersection(path.relative_to(REPO).parts)
        and not any(part.startswith(".") and part != ".ci" for part in path.relative_to(REPO).parts)
    ]


def test_no_file_holds_a_merge_conflict_marker():
    files = _text_files()
    assert len(files) > 100  # the walk found the repository
    marked = [
        str(p.relative_to(REPO)) for p in files if MARKER.search(p.read_text(errors="ignore"))
    ]
    assert not marked, f"unresolved merge conflict in {marked}"


def test_the_marker_check_finds_a_conflict():
    text = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> branch\n"
    assert len(MARKER.findall(text)) == 3
