"""Input no database can store, ids no column can hold, replies no one can read: 4xx/502, never 500.

Each case answered 500 before the fix, on SQLite, PostgreSQL or both (the driver or the JSON
encoder of the error answer crashed). Now the answer says what is wrong.
"""

import httpx
import pytest

from app.models import Adoption
from app.schemas import MAX_ID


def _messages(response) -> str:
    return " ".join(error["msg"] for error in response.json()["detail"])


@pytest.mark.parametrize(
    "path, body",
    [
        ("/animals", {"name": "Re\x00x", "species": "dog"}),
        ("/animals/arrivals", {"species": "dog", "candidates": ["Rex", "Lu\x00na"]}),
        ("/adopters", {"name": "A\x00na", "email": "ana@example.org"}),
    ],
)
async def test_nul_character_is_422_saying_so(client, path, body):
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert "must not contain the NUL character" in _messages(response)


@pytest.mark.parametrize("path", ["/animals", "/adopters"])
async def test_lone_surrogate_is_422_and_the_answer_is_valid_json(client, path):
    # httpx would refuse to encode a lone surrogate: send the JSON escape itself.
    content = '{"name": "Rex\\ud800", "species": "dog", "email": "ana@example.org"}'
    response = await client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "unable to parse raw data as a unicode string" in _messages(response)
    assert "\\ud800" in response.json()["detail"][0]["input"]  # echoed as readable text


@pytest.mark.parametrize("path", ["/animals/{}", "/adopters/{}", "/adoptions/{}"])
@pytest.mark.parametrize("bad_id", [MAX_ID + 1, 2**63, 2**64, 0, -1])
async def test_ids_no_column_can_hold_are_422(client, path, bad_id):
    response = await client.get(path.format(bad_id))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1].endswith("_id")


async def test_largest_storable_id_is_a_plain_404(client):
    response = await client.get(f"/animals/{MAX_ID}")
    assert (response.status_code, response.json()) == (404, {"detail": f"No animal with id {MAX_ID}."})


@pytest.mark.parametrize("body_id", [MAX_ID + 1, 2**63])
async def test_ids_out_of_range_in_a_body_are_422(client, body_id):
    response = await client.post("/adoptions", json={"animal_id": body_id, "adopter_id": 1})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "animal_id"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_numbers_are_422_not_a_crash_of_the_error_handler(client, number):
    content = f'{{"animal_id": {number}, "adopter_id": 1}}'
    response = await client.post("/adoptions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["input"] in ("nan", "inf", "-inf")


async def test_unknown_species_filter_is_422(client):
    response = await client.get("/animals", params={"species": "dra\x00gon"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "species"]


@pytest.fixture
async def reservation(client):
    animal = (await client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopter = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    return (await client.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})).json()


@pytest.mark.parametrize(
    "reply, reason",
    [
        (httpx.Response(201, text="<html>ok</html>"), "answered HTTP 201 with a body that is not JSON"),
        (httpx.Response(201, json={"amount": 9000}), "answered 201 without a charge id and amount"),
        (httpx.Response(201, json={"id": "ch_1", "amount": "9000"}), "answered 201 without a charge id and amount"),
        (httpx.Response(201, json=["ch_1"]), "answered HTTP 201 with JSON that is not an object"),
        (httpx.Response(402, text="declined"), "answered HTTP 402 with a body that is not JSON"),
    ],
)
async def test_malformed_provider_replies_are_502_and_change_nothing(client, reservation, payments, session, reply, reason):
    payments.post("/v1/charges").return_value = reply

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert response.status_code == 502, response.text
    assert response.json() == {"detail": f"Payment failed, please retry later (payment provider {reason})."}
    assert (await session.get(Adoption, reservation["id"])).status == "reserved"


async def test_decline_without_a_reason_still_says_declined(client, reservation, payments):
    payments.post("/v1/charges").respond(402, json={})
    response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert (response.status_code, response.json()) == (402, {"detail": "Payment declined: declined."})


def test_openapi_documents_every_error_answer():
    from app.main import app

    paths = app.openapi()["paths"]
    documented = {
        (path, method): set(operation["responses"]) for path, item in paths.items() for method, operation in item.items()
    }
    assert {"404"} <= documented[("/animals/{animal_id}", "get")]
    assert {"400", "409", "422"} <= documented[("/animals", "post")]
    assert {"400", "404", "409", "422"} <= documented[("/adoptions", "post")]
    assert {"402", "404", "409", "422", "502"} <= documented[("/adoptions/{adoption_id}/pay", "post")]
    assert all("503" in codes for codes in documented.values()), "every route answers 503 when the database is down"
    error = paths["/adoptions/{adoption_id}/pay"]["post"]["responses"]["502"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorOut"}
