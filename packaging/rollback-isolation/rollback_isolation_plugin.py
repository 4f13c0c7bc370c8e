"""An opt-in pytest plugin for ``rollback_isolation``: fixtures, only for a project that asks.

Installed with the distribution as its ``pytest11`` entry point, so pytest loads this module in
every project of the venv; by itself it only adds two ini options and registers nothing else.
A project opts in with one line in its pytest configuration::

    [pytest]                                    # or [tool.pytest.ini_options]
    rollback_isolation_url = postgresql+asyncpg://app@localhost/app_test

(or ``rollback_isolation = true`` with the URL in the ``ROLLBACK_ISOLATION_URL`` environment
variable, which also overrides the ini URL: keep passwords out of files; or with a
``rollback_isolation_engine`` fixture of its own, which replaces the plugin's). Then it gets:

- ``rollback_isolation_engine``: session-scoped ``AsyncEngine`` on that URL (create the schema
  in a session fixture of yours that requests it);
- ``isolated_sessions``: per test, the factory of ``isolated_async_sessions(engine)``;
- ``isolated_session``: per test, one ``AsyncSession`` of that factory.

All three run on the session's event loop (``loop_scope="session"``), so the project sets
``asyncio_default_fixture_loop_scope = session`` and ``asyncio_default_test_loop_scope = session``,
and needs pytest-asyncio (>=0.26): without them an opted-in run stops at once, saying which.
The copyable file, ``rollback_isolation.py`` (the course's
``tests/isolation.py``), stays free of pytest: the fixtures live here.
"""

import os
import types

import pytest

URL_OPTION = "rollback_isolation_url"
ENABLE_OPTION = "rollback_isolation"
URL_VARIABLE = "ROLLBACK_ISOLATION_URL"
PLUGIN_NAME = "rollback_isolation_fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(URL_OPTION, "rollback-isolation: database URL of the isolated_session fixtures (opts in)", default="")
    parser.addini(ENABLE_OPTION, "rollback-isolation: opt in to its fixtures (URL from $ROLLBACK_ISOLATION_URL "
                  "or a rollback_isolation_engine fixture of your own)", type="bool", default=False)  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    url = os.environ.get(URL_VARIABLE) or config.getini(URL_OPTION)
    if not (config.getini(URL_OPTION) or config.getini(ENABLE_OPTION)):
        return  # not opted in: nothing registered, nothing changed
    try:
        import pytest_asyncio
    except ImportError:
        raise pytest.UsageError("rollback-isolation's fixtures are async: pip install pytest-asyncio") from None
    try:
        test_loop_scope = config.getini("asyncio_default_test_loop_scope")
    except ValueError:  # pytest-asyncio before 0.26
        raise pytest.UsageError("rollback-isolation's fixtures need pytest-asyncio>=0.26") from None
    if test_loop_scope != "session":  # else a test's loop is not the one its session's connection was made on
        raise pytest.UsageError(
            "rollback-isolation's fixtures run on the session's event loop: set asyncio_default_test_loop_scope = "
            "session (and asyncio_default_fixture_loop_scope = session) in the pytest configuration"
        )
    config.pluginmanager.register(_fixtures(pytest_asyncio, url), PLUGIN_NAME)


def _fixtures(pytest_asyncio, url: str) -> types.ModuleType:
    """The fixtures, in a module object made here: pytest collects them only once it is registered."""
    import rollback_isolation as iso
    from sqlalchemy.ext.asyncio import create_async_engine

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def rollback_isolation_engine():
        """rollback-isolation: AsyncEngine on the configured URL (define your own to replace it)."""
        if not url:
            pytest.fail(f"rollback-isolation: no database URL: set {URL_OPTION} in the pytest configuration, "
                        f"${URL_VARIABLE}, or define a rollback_isolation_engine fixture", pytrace=False)  # fmt: skip
        engine = create_async_engine(url)
        iso.fix_sqlite_savepoints(engine)  # before its first connection (a schema fixture's)
        yield engine
        await engine.dispose()

    @pytest_asyncio.fixture(loop_scope="session")
    async def isolated_sessions(rollback_isolation_engine):
        """rollback-isolation: factory() -> AsyncSession in this test's never-committed transaction."""
        async with iso.isolated_async_sessions(rollback_isolation_engine) as factory:
            yield factory

    @pytest_asyncio.fixture(loop_scope="session")
    async def isolated_session(isolated_sessions):
        """rollback-isolation: one AsyncSession of isolated_sessions; its commits are rolled back."""
        async with isolated_sessions() as session:
            yield session

    fixtures = types.ModuleType(PLUGIN_NAME)
    for fixture in (rollback_isolation_engine, isolated_sessions, isolated_session):
        setattr(fixtures, fixture.__name__, fixture)
    return fixtures
