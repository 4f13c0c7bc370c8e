"""The payment gateway: an external HTTP API reached with httpx.

The provider honours idempotency keys, as real ones do: a second ``POST /v1/charges`` with
an ``Idempotency-Key`` it has seen answers the first charge again instead of charging twice,
and ``GET /v1/charges?idempotency_key=...`` finds the charge made with a key (the app uses it
to reconcile an attempt whose answer it never wrote down: ``app/payments.py``).

Routes never build the HTTP client themselves: the lifespan creates one
``httpx.AsyncClient`` for the whole app and ``get_payment_gateway`` hands it out, so tests
can replace the gateway (dependency override) or the network (respx, at the transport).
"""

from dataclasses import dataclass

import httpx
from fastapi import Request

from app.config import get_settings


class PaymentDeclined(Exception):
    """The provider refused the charge (HTTP 402 from the provider)."""


class PaymentGatewayError(Exception):
    """The provider could not be reached or answered something unexpected."""


@dataclass(frozen=True)
class Charge:
    id: str
    amount_cents: int


class PaymentGateway:
    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str):
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key

    async def charge(self, *, amount_cents: int, reference: str) -> Charge:
        try:
            response = await self._client.post(
                f"{self._base_url}/v1/charges",
                json={"amount": amount_cents, "currency": "EUR", "reference": reference},
                headers={"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": reference},
            )
        except httpx.HTTPError as exc:
            raise PaymentGatewayError(f"payment provider unreachable: {exc.__class__.__name__}") from exc
        if response.status_code == 402:
            reason = _json_object(response).get("reason")
            raise PaymentDeclined(reason if isinstance(reason, str) and reason else "declined")
        if response.status_code != 201:
            raise PaymentGatewayError(f"payment provider answered HTTP {response.status_code}")
        body = _json_object(response)
        charge_id, amount = body.get("id"), body.get("amount")
        # bool is an int in Python: rule it out explicitly.
        if not isinstance(charge_id, str) or not charge_id or type(amount) is not int:
            raise PaymentGatewayError("payment provider answered 201 without a charge id and amount")
        return Charge(id=charge_id, amount_cents=amount)

    async def find_charge(self, idempotency_key: str) -> Charge | None:
        """The charge the provider made with ``idempotency_key``, or None if it made none."""
        try:
            response = await self._client.get(
                f"{self._base_url}/v1/charges",
                params={"idempotency_key": idempotency_key},
                headers={"Authorization": f"Bearer {self._api_key}"},
            )
        except httpx.HTTPError as exc:
            raise PaymentGatewayError(f"payment provider unreachable: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise PaymentGatewayError(f"payment provider answered HTTP {response.status_code} to a charge lookup")
        found = _json_object(response).get("data")
        if not isinstance(found, list) or len(found) > 1:
            raise PaymentGatewayError("payment provider answered a charge lookup without a list of at most one charge")
        if not found:
            return None
        charge = found[0] if isinstance(found[0], dict) else {}
        charge_id, amount = charge.get("id"), charge.get("amount")
        if not isinstance(charge_id, str) or not charge_id or type(amount) is not int:
            raise PaymentGatewayError("payment provider answered a charge lookup without a charge id and amount")
        return Charge(id=charge_id, amount_cents=amount)


def _json_object(response: httpx.Response) -> dict:
    """The provider's JSON object, or ``PaymentGatewayError`` (the route answers 502)."""
    try:
        body = response.json()
    except ValueError:  # not JSON at all (json.JSONDecodeError, UnicodeDecodeError)
        raise PaymentGatewayError(f"payment provider answered HTTP {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise PaymentGatewayError(f"payment provider answered HTTP {response.status_code} with JSON that is not an object")
    return body


def get_payment_gateway(request: Request) -> PaymentGateway:
    """FastAPI dependency. Needs the client the lifespan put on ``app.state``."""
    settings = get_settings()
    return PaymentGateway(request.app.state.http_client, settings.payment_gateway_url, settings.payment_api_key)
