"""Using the helper in another project: it copies as one file, keeps a coverage gate, one database per worker.

The vendoring test builds a small project in a temporary directory, ``petshop/`` with the
helper copied to ``petshop/testing/isolation.py``, and runs its suite in a fresh pytest
under coverage, as that project's CI would. Measuring the app package (``--source=petshop``)
with the helper inside it fails a 100 % gate (an app uses one half of the helper, async or
sync); omitting the helper's file keeps the gate at 100 %. No ``# pragma: no cover`` is
needed. The app's real session dependency, overridden in every other test, gets a test of
its own, or it is the one gap in the app's coverage.
"""

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import tests.isolation

HELPER = Path(tests.isolation.__file__)

PETSHOP_APP = '''
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Pet(Base):
    __tablename__ = "pets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


SessionLocal = sessionmaker(create_engine("sqlite:///production.sqlite"))
app = FastAPI()


def get_session():
    with SessionLocal() as session:
        yield session


@app.post("/pets/{name}", status_code=201)
def add_pet(name: str, session: Annotated[Session, Depends(get_session)]) -> list[str]:
    session.add(Pet(name=name))
    session.commit()
    return list(session.scalars(select(Pet.name)))
'''

PETSHOP_CONFTEST = '''
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from petshop.main import Base, app, get_session
from petshop.testing.isolation import isolated_sessions, override_dependency, sync_session_dependency


@pytest.fixture(scope="session")
def engine(tmp_path_factory, worker_id):  # one database per xdist worker ("master" when serial)
    engine = create_engine(f"sqlite:///{tmp_path_factory.getbasetemp()}/petshop_test_{worker_id}.sqlite")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine):
    with isolated_sessions(engine) as factory:
        with override_dependency(app, get_session, sync_session_dependency(factory)), TestClient(app) as client:
            yield client
'''

PETSHOP_TESTS = '''
import pytest
from sqlalchemy.orm import Session

from petshop.main import get_session


@pytest.mark.parametrize("run", range(2))
def test_add_pet(run, client):
    assert client.post("/pets/Rex").json() == ["Rex"]  # the previous run's Rex was rolled back


def test_the_real_dependency_hands_out_a_session():  # overridden everywhere else, so covered here
    dependency = get_session()
    assert isinstance(next(dependency), Session)
    dependency.close()
'''


def test_the_helper_imports_only_the_standard_library_and_sqlalchemy():
    imported = set()
    for node in ast.walk(ast.parse(HELPER.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"sqlalchemy"}


def write_petshop(root: Path) -> None:
    files = {
        "petshop/__init__.py": "",
        "petshop/main.py": PETSHOP_APP,
        "petshop/testing/__init__.py": "",
        "tests/__init__.py": "",
        "tests/conftest.py": PETSHOP_CONFTEST,
        "tests/test_pets.py": PETSHOP_TESTS,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    shutil.copy(HELPER, root / "petshop/testing/isolation.py")  # vendored: an ordinary module of the project


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "COVERAGE_PROCESS_START")}
    env["PYTHONPATH"] = str(root)  # the project's own root, as its CI would have it
    command = [sys.executable, "-m", "coverage", *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.subprocess
def test_a_vendored_copy_runs_the_projects_suite_and_keeps_a_coverage_gate_when_omitted(tmp_path):
    write_petshop(tmp_path)
    pytest_args = ["-p", "no:nbval", "-p", "no:randomly", "-p", "no:cacheprovider", "-c", os.devnull]
    suite = run(tmp_path, "run", "--source=petshop", "-m", "pytest", *pytest_args, "--rootdir", ".", "-q", "tests")
    assert "3 passed" in suite.stdout, suite.stdout + suite.stderr

    measured = run(tmp_path, "report", "--fail-under=100", "--show-missing")
    assert measured.returncode == 2, measured.stdout  # below 100 %: the async half of the helper never runs ...
    assert "petshop/testing/isolation.py" in measured.stdout
    assert "petshop/main.py" in measured.stdout and "100%" in measured.stdout.split("petshop/main.py")[1].splitlines()[0]

    gated = run(tmp_path, "report", "--fail-under=100", "--omit=*/testing/isolation.py")
    assert gated.returncode == 0, gated.stdout  # ... the app itself is at 100 %
    assert "isolation.py" not in gated.stdout


def test_each_xdist_worker_has_its_own_database(worker_id, database_url):
    # this suite's conftest names it after PYTEST_XDIST_WORKER; the worker_id fixture gives the same name
    assert make_url(database_url).database.rsplit("/", 1)[-1].removesuffix(".sqlite").endswith(f"_test_{worker_id}")
