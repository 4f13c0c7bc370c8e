"""pytest plugin for the nbval runs (``-p course.nbval_database``): a cell whose output differs by
database is compared with the output recorded for the database this run uses, never skipped.

Stored outputs come from PostgreSQL. A cell tagged ``output-per-database`` also carries the
outputs ``python -m course build`` recorded on SQLite (cell metadata ``outputs_by_database``).
On SQLite this plugin gives nbval those as the reference; a tagged cell with nothing recorded for
the database fails, saying how to record it.
"""

from __future__ import annotations

import nbformat

from course.build import OTHER_OUTPUTS, PER_DATABASE, STORED_FROM


def reference_outputs(cell, backend: str) -> list:
    """What a tagged cell must print on ``backend``."""
    if backend == STORED_FROM:
        return cell.outputs
    recorded = cell.metadata.get(OTHER_OUTPUTS, {}).get(backend)
    if recorded is None:
        return [nbformat.v4.new_output(
            "stream", name="stderr",
            text=f"no output recorded for {backend}: rebuild the lesson (python -m course build NN on PostgreSQL)\n")]
    return [nbformat.from_dict(o) for o in recorded]


def pytest_collection_modifyitems(session, config, items):
    from course import database

    backend = database.backend(database.selected_url())
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None or PER_DATABASE not in cell.get("metadata", {}).get("tags", []):
            continue
        cell.outputs = reference_outputs(cell, backend)
