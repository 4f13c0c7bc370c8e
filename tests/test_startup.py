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
