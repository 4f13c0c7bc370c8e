"""Sending e-mail. The shelter only logs; a real deployment would plug in SMTP or an API."""

import logging
from typing import Protocol

log = logging.getLogger("app.notifications")


class Notifier(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class LogNotifier:
    async def send(self, to: str, subject: str, body: str) -> None:
        log.info("mail to %s: %s", to, subject)


_notifier = LogNotifier()


def get_notifier() -> Notifier:
    """FastAPI dependency; tests override it with a recording fake."""
    return _notifier
