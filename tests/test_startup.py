"""Start-up: collecting the suite imports none of the notebook machinery (a count, not a time)."""

import pytest

from tests.conftest import IMPORTED_WHILE_COLLECTING


def test_collecting_the_suite_imports_no_notebook_machinery(request):
    if request.config.pluginmanager.has_plugin("nbval"):
        pytest.skip("nbval is on (-p nbval): it imports nbformat itself")
    imported = request.config.stash[IMPORTED_WHILE_COLLECTING]

    assert imported == [], (
        f"collecting the suite imported {', '.join(imported)}: import it inside the test or helper that "
        "needs it (see tests/test_quiz_quality.py), not at the top of a test module"
    )


def test_notebook_pytest_runs_turn_off_the_plugins_the_suite_turns_off():
    """One list for cells and lessons' pytest processes (course.notebook.PLUGINS_OFF), the same as addopts."""
    import re
    import tomllib
    from pathlib import Path

    from course.notebook import PLUGINS_OFF

    addopts = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())[
        "tool"]["pytest"]["ini_options"]["addopts"]
    assert re.findall(r"-p (no:\S+)", addopts) == list(PLUGINS_OFF[1::2])
