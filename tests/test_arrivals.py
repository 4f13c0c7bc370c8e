"""The retry route: first free name wins, one SAVEPOINT per attempt."""

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.models import Animal


async def test_takes_the_first_candidate_when_free(client):
    response = await client.post("/animals/arrivals", json={"species": "cat", "candidates": ["Max", "Cody"]})

    assert response.status_code == 201
    assert response.json()["name"] == "Max"


async def test_skips_taken_names(client, session):
    await client.post("/animals", json={"name": "Max", "species": "dog"})
    await client.post("/animals", json={"name": "Cody", "species": "dog"})

    response = await client.post("/animals/arrivals", json={"species": "cat", "candidates": ["Max", "Cody", "Robby"]})

    assert response.status_code == 201
    assert response.json()["name"] == "Robby"
    names = set(await session.scalars(select(Animal.name)))
    assert names == {"Max", "Cody", "Robby"}  # the failed attempts left nothing behind


async def test_successive_arrivals_take_successive_names(client):
    names = []
    for _ in range(3):
        response = await client.post("/animals/arrivals", json={"species": "dog", "candidates": ["Max", "Cody", "Robby"]})
        names.append(response.json()["name"])
    assert names == ["Max", "Cody", "Robby"]


async def test_all_names_taken_returns_409(client, session):
    await client.post("/animals", json={"name": "Max", "species": "dog"})

    response = await client.post("/animals/arrivals", json={"species": "cat", "candidates": ["Max"]})

    assert response.status_code == 409
    assert response.json() == {"detail": "All candidate names are taken: Max."}
    assert await session.scalar(select(func.count()).select_from(Animal)) == 1


@pytest.mark.parametrize("body", [{"species": "cat", "candidates": []}, {"species": "cat"}, {"candidates": ["Max"]}])
async def test_invalid_arrival_returns_422(client, body):
    assert (await client.post("/animals/arrivals", json=body)).status_code == 422


async def test_naive_route_also_passes_under_create_savepoint(sessions):
    """The rollback-per-retry variant works under the helper: its rollback() only rolls back a savepoint."""
    from httpx import ASGITransport, AsyncClient

    from app import naive
    from app.db import get_session
    from tests.isolation import override_dependency, session_dependency

    demo = FastAPI()
    demo.include_router(naive.router)
    with override_dependency(demo, get_session, session_dependency(sessions)):
        async with AsyncClient(transport=ASGITransport(app=demo), base_url="http://test") as http:
            names = [
                (await http.post("/naive/arrivals", json={"species": "dog", "candidates": ["Max", "Cody"]})).json()["name"]
                for _ in range(2)
            ]
    assert names == ["Max", "Cody"]
