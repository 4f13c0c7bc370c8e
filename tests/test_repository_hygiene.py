"""No reference a reader cannot follow: internal labels for sources and notes stay out of the repository.

The course cites an article as a reader would (title, author or site, date, link) and states a
fact with the evidence a lesson runs; it never points at working notes that no clone has. This
test greps every text file of the working tree (minus .git, .venv, .data and build caches),
case-insensitively, as the issue's own check does. The patterns are assembled at run time so
that this file does not match itself.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", ".data", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", "node_modules"}
FORBIDDEN = {
    "an internal source label ('se" + "ed N', also in a test name)": re.compile(r"(?<!-)se" + r"ed[ _][0-9]", re.I),  # not a --seed option
    "a notes file no clone has": re.compile("PIT" + "FALLS", re.I),
    "a path outside the repository": re.compile(re.escape(".." + "/shared"), re.I),
}


def text_files(root: Path = ROOT):
    for path in sorted(root.rglob("*")):
        parts = set(path.relative_to(root).parts)
        if parts & SKIP_DIRS or any(p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # images, databases


def findings(root: Path = ROOT) -> list[str]:
    out = []
    for path, text in text_files(root):
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if match := pattern.search(line):
                    out.append(f"{path.relative_to(root)}:{number}: {what}: {match.group(0)!r} in "
                               f"{line.strip()[:120]!r}")
    return out


def test_the_grep_finds_what_it_must(tmp_path):
    """Negative control: each pattern is found, with file and line, and .git/.venv are skipped."""
    (tmp_path / "lesson.py").write_text("ok --se" "ed 20261202\n# A blog post (se" "ed 001) says\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("see pit" "falls 23\nand .." "/shared/x.md\n", encoding="utf-8")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.py").write_text("PIT" "FALLS\n", encoding="utf-8")

    found = findings(tmp_path)

    assert [f.split(": ")[0] for f in found] == ["lesson.py:2", "notes.md:1", "notes.md:2"]


def test_no_internal_labels_notes_or_outside_paths_in_the_repository():
    found = findings()

    assert not found, f"{len(found)} reference(s) a reader cannot follow:\n" + "\n".join(found)
