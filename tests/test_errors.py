"""course/errors.py: the error index is found in the stored outputs, and --check catches what is not there.

Sample notebooks and registries go to a temporary directory; `python -m course errors --check`
(run-tests.sh) is what proves the committed ERRORS.md against the real solutions/.
"""

import json

import pytest

from course import errors


def notebook(path, *cells):
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def md(text, tags=()):
    return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": text}


def code(source, *outputs):
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": list(outputs), "execution_count": 1}


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


@pytest.fixture
def solutions(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    notebook(folder / "05_savepoints.ipynb",
             md("# 05 · Savepoints"), md("## 4. What it means"),
             code("run_tests('x', expect='failed')",
                  stream("E   sqlite3.OperationalError: no such savepoint:\n   sa_savepoint_2\n")),
             md("The same on PostgreSQL, said only here.", tags=["instructor"]),
             code('assert error == {"postgresql": \'savepoint "b" does not exist\'}[backend]'))
    return folder


def registry(tmp_path, *entries):
    path = tmp_path / "errors.toml"
    path.write_text("\n".join("[[error]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in e.items()) for e in entries))
    return errors.load_registry(path)


def entry(message, **extra):
    return {"message": message, "cause": "c.", "fix": "f.", **extra}


def test_a_message_is_found_in_stored_outputs_whitespace_collapsed_and_linked_with_its_section(tmp_path, solutions):
    [found] = errors.locate(registry(tmp_path, entry("no such savepoint: sa_savepoint_2")), solutions)

    assert [p.link() for p in found.places] == [
        "[05_savepoints](solutions/05_savepoints.ipynb#4.-What-it-means), cell 3 (*4. What it means*)"]
    assert errors.problems_of([found]) == []


def test_a_message_in_no_output_is_a_problem_even_when_the_source_has_it(tmp_path, solutions):
    found = errors.locate(registry(tmp_path, entry("savepoint \"b\" does not exist")), solutions)

    [problem] = errors.problems_of(found)
    assert "'savepoint \"b\" does not exist' is registered" in problem and "stored output" in problem


def test_postgresql_only_messages_are_proven_by_the_cell_that_checks_them(tmp_path, solutions):
    [found] = errors.locate(registry(tmp_path, entry("savepoint \"b\" does not exist", shown="postgresql")), solutions)

    assert [p.cell for p in found.places] == [5]
    assert "(PostgreSQL only)" not in errors.render([found])  # no kind given
    assert "on PostgreSQL; the cell that checks it" in errors.render([found])


def test_instructor_notes_do_not_count(tmp_path, solutions):
    found = errors.locate(registry(tmp_path, entry("said only here", shown="postgresql")), solutions)

    assert errors.problems_of(found)


def test_a_registry_entry_without_cause_or_with_a_typo_is_refused(tmp_path):
    with pytest.raises(errors.RegistryError) as caught:
        registry(tmp_path, {"message": "boom", "fix": "f."}, entry("bang", shwon="output"), entry("bang"))

    text = "\n".join(caught.value.problems)
    assert "error 1 ('boom'): missing cause" in text
    assert "error 2 ('bang'): unknown key(s) shwon" in text


def test_the_real_registry_loads_and_every_message_is_shown_by_the_real_solutions():
    found = errors.locate(errors.load_registry())

    assert errors.problems_of(found) == []
