"""Test doubles shared by the suite (and by ``scripts/serve-check``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class RecordingNotifier:
    """Stands in for the app's Notifier: remembers every mail instead of sending it."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


@dataclass
class FakePaymentProvider:
    """A payment provider that honours idempotency keys, as real providers do.

    ``POST /v1/charges`` with an ``Idempotency-Key`` it has not seen makes a charge (201); with a
    key it has seen it answers the same charge again and charges nothing. ``GET
    /v1/charges?idempotency_key=K`` answers ``{"data": [the charge]}`` or ``{"data": []}``.
    ``decline`` makes every new charge a 402 with that reason (no charge, the key stays unused).
    ``on_charge(key)`` runs after a charge is made and before it is answered: a crash test kills
    the app there. Use it in process through respx (``install``) or over HTTP (``serve``).
    """

    delay: float = 0.0  #: seconds a charge takes
    decline: str | None = None
    on_charge: Callable[[str], None] | None = None
    charges: dict[str, dict] = field(default_factory=dict)  #: Idempotency-Key -> the charge
    requests: list[tuple[str, str]] = field(default_factory=list)  #: (method, Idempotency-Key) received
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def charges_for(self, reference: str) -> list[dict]:
        """The charges made for one adoption (``adoption-7``, ``adoption-7-2``, ...)."""
        with self._lock:
            return [c for c in self.charges.values() if c["reference"] == reference or c["reference"].startswith(reference + "-")]

    def handle(self, method: str, key: str, body: dict) -> tuple[int, dict, bool]:
        """(status, JSON answer, whether a new charge was made)."""
        with self._lock:
            self.requests.append((method, key))
            if method == "GET":
                found = self.charges.get(key)
                return 200, {"data": [found] if found else []}, False
            if not key:
                return 400, {"error": "an Idempotency-Key header is required"}, False
            if key in self.charges:
                return 201, self.charges[key], False  # the same charge again: nothing charged
            if self.decline:
                return 402, {"reason": self.decline}, False
            charge = {"id": f"ch_{len(self.charges) + 1}", "amount": body["amount"], "reference": body.get("reference", "")}
            self.charges[key] = charge
            return 201, charge, True

    # -- in process: respx routes ------------------------------------------------------------
    async def respond(self, request: httpx.Request) -> httpx.Response:
        """The answer to one request (respx calls it; a test may wrap it)."""
        if request.method == "GET":
            key = request.url.params.get("idempotency_key", "")
            body = {}
        else:
            key, body = request.headers.get("Idempotency-Key", ""), json.loads(request.content)
        status, answer, charged = self.handle(request.method, key, body)
        if charged:
            if self.on_charge is not None:
                self.on_charge(key)
            await asyncio.sleep(self.delay)
        return httpx.Response(status, json=answer)

    def install(self, router) -> FakePaymentProvider:
        """Answer ``POST`` and ``GET /v1/charges`` on a ``respx`` router (its base URL: the provider's)."""
        router.post("/v1/charges").side_effect = self.respond
        router.get("/v1/charges").side_effect = self.respond
        return self

    # -- over HTTP: a thread on 127.0.0.1 -----------------------------------------------------
    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the provider on 127.0.0.1 (a free port) in a thread; yields its base URL."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                if method == "GET":
                    key, body = parse_qs(urlsplit(self.path).query).get("idempotency_key", [""])[0], {}
                else:
                    key = self.headers.get("Idempotency-Key", "")
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer, charged = provider.handle(method, key, body)
                if charged:
                    if provider.on_charge is not None:
                        provider.on_charge(key)
                    time.sleep(provider.delay)
                reply = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):  # the caller is gone (a crash test killed it)
                    pass

            def do_POST(self):  # noqa: N802 (http.server's naming)
                self._answer("POST")

            def do_GET(self):  # noqa: N802
                self._answer("GET")

            def log_message(self, *args):  # quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
