"""Settings, read from the environment in exactly one place."""

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{REPO_ROOT / '.data' / 'shelter.sqlite'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    #: Any SQLAlchemy async URL: ``sqlite+aiosqlite:///path`` or
    #: ``postgresql+asyncpg://user@host:port/db``.
    database_url: str = DEFAULT_DATABASE_URL
    #: Base URL of the (external) payment provider the shelter charges adoption fees with.
    payment_gateway_url: str = "https://payments.example.com"
    payment_api_key: str = "test-key"
    payment_timeout_seconds: float = 5.0
    #: A payment attempt still "paying" after this long belongs to a request that died (a crash
    #: between the provider's charge and the commit): a retry or the sweep reconciles it.
    #: Longer than any provider call may take (``payment_timeout_seconds`` per network step).
    payment_pending_seconds: float = 30.0
    #: The scheduler (reservation expiry, payment sweep) only runs where this is switched on.
    scheduler_enabled: bool = False
    #: The scheduler runs the payment sweep (``app.jobs.run_reconcile_job``) this often, so an
    #: attempt whose request died is settled without anyone running ``python -m app reconcile``.
    payment_sweep_minutes: float = 5.0
    #: Reservations that stay unpaid longer than this are expired by the scheduled job.
    reservation_ttl_hours: int = 48
    mail_sender: str = "adoptions@paws-and-whiskers.example"

    @field_validator("payment_sweep_minutes")
    @classmethod
    def _a_positive_interval(cls, minutes: float) -> float:
        if not 0 < minutes < float("inf"):  # also rejects NaN and infinity
            raise ValueError(f"PAYMENT_SWEEP_MINUTES must be a finite number more than 0 (the minutes between two payment sweeps), not {minutes:g}")
        return minutes


@lru_cache
def get_settings() -> Settings:
    return Settings()
