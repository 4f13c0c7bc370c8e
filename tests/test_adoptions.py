"""Reservation (background e-mail) and payment (external gateway, mocked at the transport)."""

import json

import httpx
import pytest

from app.models import Adoption, Animal


@pytest.fixture
async def reservation(client):
    """A cat reserved by Ana, created through the API."""
    animal = (await client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopter = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    response = await client.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})
    assert response.status_code == 201
    return response.json()


async def test_reservation_charges_the_species_fee_and_reserves_the_animal(client, reservation, session):
    assert (reservation["fee_cents"], reservation["status"]) == (9000, "reserved")
    animal = await session.get(Animal, reservation["animal_id"])
    assert animal.status == "reserved"


async def test_reservation_mail_has_been_sent_when_the_response_arrives(reservation, notifier):
    # Background tasks run before ASGITransport hands back the response: assert right away.
    assert notifier.sent == [
        ("ana@example.org", "Luna is reserved for you", "Please pay the adoption fee of EUR 90.00 within 48 hours.")
    ]


async def test_reserving_a_reserved_animal_is_409_and_sends_no_mail(client, reservation, notifier):
    other = (await client.post("/adopters", json={"name": "Bo", "email": "bo@example.org"})).json()

    response = await client.post("/adoptions", json={"animal_id": reservation["animal_id"], "adopter_id": other["id"]})

    assert response.status_code == 409
    assert response.json() == {"detail": "Luna is not available (status: reserved)."}
    assert len(notifier.sent) == 1  # only the first reservation's mail


@pytest.mark.parametrize("missing", ["animal", "adopter"])
async def test_reserving_with_unknown_ids_is_404(client, missing, notifier):
    animal = (await client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopter = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    body = {"animal_id": animal["id"], "adopter_id": adopter["id"], f"{missing}_id": 999999}

    response = await client.post("/adoptions", json=body)

    assert response.status_code == 404
    assert response.json() == {"detail": f"No {missing} with id 999999."}
    assert notifier.sent == []


async def test_reservation_body_is_validated(client):
    response = await client.post("/adoptions", json={"animal_id": 0, "adopter_id": "x"})
    assert response.status_code == 422
    assert {e["loc"][-1] for e in response.json()["detail"]} == {"animal_id", "adopter_id"}


async def test_paying_charges_the_gateway_and_completes_the_adoption(client, reservation, payments, notifier, session):
    charge = payments.post("/v1/charges").respond(201, json={"id": "ch_123", "amount": 9000})

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["payment_id"]) == ("paid", "ch_123")
    sent = charge.calls.last.request
    assert json.loads(sent.content) == {"amount": 9000, "currency": "EUR", "reference": f"adoption-{reservation['id']}"}
    assert sent.headers["Authorization"] == "Bearer test-key"
    assert sent.headers["Idempotency-Key"] == f"adoption-{reservation['id']}"
    assert (await session.get(Animal, reservation["animal_id"])).status == "adopted"
    assert notifier.sent[-1] == ("ana@example.org", "Welcome home, Luna!", "We received EUR 90.00 (payment ch_123).")


async def test_declined_payment_is_402_and_changes_nothing(client, reservation, payments, session):
    payments.post("/v1/charges").respond(402, json={"reason": "card expired"})

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert (response.status_code, response.json()) == (402, {"detail": "Payment declined: card expired."})
    assert (await session.get(Adoption, reservation["id"])).status == "reserved"


@pytest.mark.parametrize(
    "gateway_answer, reason",
    [
        (httpx.Response(500), "payment provider answered HTTP 500"),
        (httpx.ConnectTimeout("timed out"), "payment provider unreachable: ConnectTimeout"),
    ],
)
async def test_gateway_failure_is_502(client, reservation, payments, gateway_answer, reason, session):
    route = payments.post("/v1/charges")
    if isinstance(gateway_answer, Exception):
        route.side_effect = gateway_answer
    else:
        route.return_value = gateway_answer

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert response.status_code == 502
    assert response.json() == {"detail": f"Payment failed, please retry later ({reason})."}
    assert (await session.get(Adoption, reservation["id"])).status == "reserved"


async def test_paying_twice_is_409_and_charges_once(client, reservation, payments):
    charge = payments.post("/v1/charges").respond(201, json={"id": "ch_1", "amount": 9000})
    await client.post(f"/adoptions/{reservation['id']}/pay")

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert (response.status_code, response.json()) == (409, {"detail": f"Adoption {reservation['id']} is paid, not payable."})
    assert charge.call_count == 1


async def test_get_adoption_and_404s(client, reservation):
    assert (await client.get(f"/adoptions/{reservation['id']}")).json() == reservation
    assert (await client.get("/adoptions/999999")).status_code == 404
    assert (await client.post("/adoptions/999999/pay")).json() == {"detail": "No adoption with id 999999."}
