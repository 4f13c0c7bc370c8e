"""Lessons 16 and 17's clean-up cell (``course.capstone.remove_project``), on the selected database and
on a SQLite file: the project folder and the databases named are gone afterwards (on PostgreSQL even
while a connection to one is still open), a database that does not exist is not an error, and
(negative control) a database not named is left alone.
"""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from course.capstone import remove_project
from course.database import database_exists, prepare, sibling_url


@pytest.fixture(params=["selected-database", "sqlite-file"])
def base_url(request, tmp_path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite+aiosqlite:///{tmp_path / 'shelter.sqlite'}"
    return os.environ["DATABASE_URL"]  # this process's test database (tests/conftest.py)


async def _with_a_row(url: str):
    """Create the database ``url`` names, with one row in it; the engine is returned still open."""
    await prepare(url)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE leftover (id integer)"))
        await conn.execute(text("INSERT INTO leftover VALUES (1)"))
    return engine


def _project(tmp_path):
    project = tmp_path / "capstone-project"
    project.mkdir()
    (project / "test_animals.py").write_text("def test_nothing():\n    pass\n")
    return project


async def test_the_project_and_the_databases_its_runs_created_are_gone(base_url, tmp_path):
    urls = [sibling_url(base_url, "cleanup_gw0"), sibling_url(base_url, "cleanup_gw1")]
    engines = [await _with_a_row(url) for url in urls]
    project = _project(tmp_path)
    connection = await engines[0].connect()  # a connection still open must not stop the drop
    try:
        assert [await database_exists(url) for url in urls] == [True, True]

        assert await remove_project(project, urls) == []

        assert not project.exists()
        assert [await database_exists(url) for url in urls] == [False, False]
    finally:
        await connection.close()
        for engine in engines:
            await engine.dispose()


async def test_a_database_that_does_not_exist_is_not_an_error_and_one_not_named_is_kept(base_url, tmp_path):
    kept = sibling_url(base_url, "cleanup_kept")
    missing = sibling_url(base_url, "cleanup_never_made")
    engine = await _with_a_row(kept)
    await engine.dispose()
    try:
        assert not await database_exists(missing)

        assert await remove_project(_project(tmp_path), [missing]) == []
        assert await remove_project(tmp_path / "already-gone", [missing]) == []

        assert await database_exists(kept)
    finally:
        await remove_project(tmp_path / "already-gone", [kept])
    assert not await database_exists(kept)
