"""A crash between the provider's charge and the commit: after recovery, one charge, one paid adoption.

The app is served as in production (``python -m app``, uvicorn, its own database
``..._test_crash_<worker>``). The fake provider (``tests/fakes.py``, honouring Idempotency-Key)
makes the charge and then, before it answers, the app process is killed (SIGKILL: no cleanup,
no rollback, nothing written). The charge exists; the app's commit never happened. Then the app
is started again and the payment recovers, by the client's retry or by the sweep
(``python -m app reconcile``). The provider must have been asked to charge once, and the
database must hold one paid adoption with that charge's id.

The same with the database instead of the app: a PostgreSQL server of the test's own is shut
down immediately (SIGQUIT, as a crash) after the charge; the payment answers 503 with
Retry-After; the server is started again (crash recovery) and the client's retry finds the
charge by its key.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Adoption, Animal, Base
from course.database import prepare, selected_url, sibling_url
from tests.fakes import FakePaymentProvider
from tests.test_postgres_script import _free_port, needs_postgres

pytestmark = pytest.mark.subprocess

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def crash_database_url() -> str:
    """An empty database of its own (the app creates the tables when it starts)."""
    url = sibling_url(selected_url(), f"crash_{os.environ.get('PYTEST_XDIST_WORKER', 'master')}")

    async def fresh_schema():
        await prepare(url)
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
        finally:
            await engine.dispose()

    asyncio.run(fresh_schema())
    yield url
    asyncio.run(fresh_schema())  # leave no rows behind


def _app_env(database_url: str, provider_url: str, port: int) -> dict:
    # PAYMENT_PENDING_SECONDS=0: an attempt left "paying" counts as dead at once (default 30 s).
    return dict(os.environ, DATABASE_URL=database_url, PAYMENT_GATEWAY_URL=provider_url, HOST="127.0.0.1",
                PORT=str(port), PAYMENT_PENDING_SECONDS="0")


def _start_app(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        server = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):  # it is ready when /health answers; a server that exits is reported at once
        if server.poll() is not None:
            pytest.fail(f"python -m app exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{env['PORT']}/health").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.1)"])
    server.kill()
    pytest.fail(f"python -m app did not answer /health:\n{log.read_text()[-3000:]}")


async def _count(url: str, *where) -> tuple[int, str, str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            paid = await conn.scalar(select(func.count()).select_from(Adoption).where(Adoption.status == "paid"))
            adoption = (await conn.execute(select(Adoption.status, Adoption.payment_id))).one()
            animal = await conn.scalar(select(Animal.status))
            return paid, tuple(adoption), animal
    finally:
        await engine.dispose()


@pytest.fixture
def own_postgres():
    """A throwaway PostgreSQL server of this test's own (``scripts/postgres``, a free port), so that
    killing it harms nobody. Yields (its URL, its data directory, the script's environment)."""
    port = _free_port()
    # Directly under /tmp: as root the script hands the directory to 'postgres' (see test_postgres_script.py).
    env = dict(os.environ, COURSE_PG_PORT=str(port), COURSE_PG_DB="crash",
               COURSE_PG_DIR=tempfile.mkdtemp(prefix=f"course-pg-crash-{port}-"))
    started = subprocess.run([str(REPO / "scripts" / "postgres"), "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    yield started.stdout.strip(), Path(env["COURSE_PG_DIR"]) / "data", env
    subprocess.run([str(REPO / "scripts" / "postgres"), "purge"], env=env, capture_output=True)


def _kill_postgres(data: Path) -> None:
    """An immediate shutdown (SIGQUIT to the postmaster): no checkpoint, crash recovery at the next start."""
    pid = int((data / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGQUIT)
    while True:  # until the postmaster is gone (it ends its backends first)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.05)"])


@needs_postgres
def test_postgres_killed_between_charge_and_commit_one_charge_one_paid_adoption(own_postgres, tmp_path):
    url, data, pg_env = own_postgres
    log = tmp_path / "app.log"
    provider = FakePaymentProvider(on_charge=lambda key: _kill_postgres(data))  # charged, then the database dies
    with provider.serve() as provider_url:
        env = _app_env(url, provider_url, _free_port())
        server = _start_app(env, log)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{env['PORT']}", timeout=60) as http:
                animal = http.post("/animals", json={"name": "Luna", "species": "cat"}).json()
                adopter = http.post("/adopters", json={"name": "Ana", "email": "ana@example.org"}).json()
                adoption = http.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]}).json()

                down = http.post(f"/adoptions/{adoption['id']}/pay")  # the commit after the charge fails
                assert (down.status_code, down.headers.get("Retry-After")) == (503, "5"), down.text
                provider.on_charge = None
                restarted = subprocess.run([str(REPO / "scripts" / "postgres"), "start"], env=pg_env, capture_output=True, text=True)
                assert restarted.returncode == 0, restarted.stderr
                assert asyncio.run(_count(url)) == (0, ("paying", None), "reserved")  # charged, not recorded

                retry = http.post(f"/adoptions/{adoption['id']}/pay")
                assert (retry.status_code, retry.json()["payment_id"]) == (200, "ch_1"), retry.text
        finally:
            server.terminate()
            server.wait()

    assert list(provider.charges) == [f"adoption-{adoption['id']}"]
    assert [method for method, _ in provider.requests] == ["POST", "GET"]  # charged once, then looked up
    assert asyncio.run(_count(url)) == (1, ("paid", "ch_1"), "adopted")


@pytest.mark.parametrize("recovery", ["retry", "sweep"])
def test_killed_between_charge_and_commit_one_charge_one_paid_adoption(crash_database_url, recovery, tmp_path):
    log = tmp_path / "app.log"
    server = None

    def kill_the_app(key):  # the charge is made; the app dies before it hears of it
        server.kill()
        server.wait()

    provider = FakePaymentProvider(on_charge=kill_the_app)
    with provider.serve() as provider_url:
        env = _app_env(crash_database_url, provider_url, _free_port())
        server = _start_app(env, log)
        base = f"http://127.0.0.1:{env['PORT']}"
        with httpx.Client(base_url=base, timeout=60) as http:
            animal = http.post("/animals", json={"name": "Luna", "species": "cat"}).json()
            adopter = http.post("/adopters", json={"name": "Ana", "email": "ana@example.org"}).json()
            adoption = http.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]}).json()
            with pytest.raises(httpx.TransportError):  # the app died mid-request
                http.post(f"/adoptions/{adoption['id']}/pay")
        assert server.wait() == -9
        assert asyncio.run(_count(crash_database_url)) == (0, ("paying", None), "reserved")  # charged, not recorded
        provider.on_charge = None

        server = _start_app(env, log)  # recovery
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                if recovery == "retry":
                    response = http.post(f"/adoptions/{adoption['id']}/pay")
                    assert (response.status_code, response.json()["payment_id"]) == (200, "ch_1"), response.text
                else:
                    swept = subprocess.run([sys.executable, "-m", "app", "reconcile"], cwd=REPO, env=env,
                                           capture_output=True, text=True)
                    assert swept.stdout.strip() == f"reconciled 1 payment(s): adoption {adoption['id']} paid", swept
                    again = http.post(f"/adoptions/{adoption['id']}/pay")
                    assert again.status_code == 409, again.text
        finally:
            server.terminate()
            server.wait()

    assert list(provider.charges) == [f"adoption-{adoption['id']}"]
    assert [method for method, _ in provider.requests] == ["POST", "GET"]  # charged once, then looked up
    assert asyncio.run(_count(crash_database_url)) == (1, ("paid", "ch_1"), "adopted")
