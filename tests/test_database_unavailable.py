"""A database that is down answers 503 with ``Retry-After``, and the client's connection survives.

The app is served by uvicorn (in a thread, on a socket of its own on 127.0.0.1), as in
production, because what broke was the HTTP connection: after an unhandled database error
uvicorn closed the client's keep-alive connection, and the client's next request failed.
The database is one that cannot be reached: a PostgreSQL URL whose port nobody listens on,
and a SQLite file in a directory that does not exist.
"""

import contextlib
import http.client
import json
import socket
import threading
import time

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.db import get_session, make_engine
from app.errors import database_outage, database_unavailable
from app.main import app as shelter_app
from tests.isolation import override_dependency


def _port_nobody_listens_on() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["postgresql", "sqlite"])
def unreachable_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return f"postgresql+asyncpg://course:unused@127.0.0.1:{_port_nobody_listens_on()}/shelter"
    return f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'shelter.sqlite'}"


@contextlib.contextmanager
def served(app):
    """uvicorn serving ``app`` in a thread on 127.0.0.1; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            time.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def _send(conn: http.client.HTTPConnection, method: str, path: str):
    conn.request(method, path)
    response = conn.getresponse()
    return response, response.read()


def test_a_database_that_is_down_answers_503_and_the_connection_stays_usable(unreachable_url):
    engine = make_engine(unreachable_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def unreachable_session():
        async with sessions() as session:
            yield session

    with override_dependency(shelter_app, get_session, unreachable_session), served(shelter_app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        answers = []
        for method, path in [("GET", "/animals"), ("POST", "/adoptions/1/pay")]:
            response, body = _send(conn, method, path)
            answers.append((response.status, response.getheader("Retry-After"), response.getheader("Connection")))
            assert json.loads(body)["detail"].startswith("The database is unavailable right now ("), body
            assert json.loads(body)["detail"].endswith("); retry in 5 seconds."), body
        first_socket = conn.sock

        health, _ = _send(conn, "GET", "/health")  # the next request, on the same keep-alive connection

        assert answers == [(503, "5", None), (503, "5", None)]
        assert health.status == 200
        assert conn.sock is first_socket and first_socket is not None  # not silently reconnected
        conn.close()


def test_only_unavailability_is_a_503():
    """Negative control for the classifier: an error in a query is a bug (500), not a 503."""
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError

    assert database_unavailable(OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")))
    assert database_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert not database_outage(ConnectionRefusedError(111, "Connect call failed"))  # not from the database layer
    assert not database_unavailable(OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: x")))
    assert not database_unavailable(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))


async def test_a_connection_error_of_another_service_is_not_called_a_database_outage(client):
    """Negative control: a ConnectionError from the mail server (a background task) is not a 503;
    it reaches the test as before (ASGITransport re-raises it)."""
    from app.services.notifications import get_notifier

    class MailServerDown:
        async def send(self, *args):
            raise ConnectionError("mail server down")

    animal = (await client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopter = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    with override_dependency(shelter_app, get_notifier, MailServerDown):
        with pytest.raises(ConnectionError, match="mail server down"):
            await client.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})
