"""Test doubles shared by the suite."""

from dataclasses import dataclass, field


@dataclass
class RecordingNotifier:
    """Stands in for the app's Notifier: remembers every mail instead of sending it."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))
