from sqlalchemy import func, select

from app.models import Animal


async def test_create_animal_returns_201_and_stores_it(client, session):
    response = await client.post("/animals", json={"name": "Rex", "species": "dog"})

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["species"], body["status"]) == ("Rex", "dog", "available")
    stored = await session.get(Animal, body["id"])
    assert stored is not None and stored.name == "Rex"


async def test_duplicate_name_returns_409_with_readable_message(client, session):
    assert (await client.post("/animals", json={"name": "Rex", "species": "dog"})).status_code == 201

    response = await client.post("/animals", json={"name": "Rex", "species": "cat"})

    assert response.status_code == 409
    assert response.json() == {"detail": "An animal named 'Rex' already exists."}
    assert await session.scalar(select(func.count()).select_from(Animal)) == 1


async def test_after_a_409_the_next_request_works(client):
    await client.post("/animals", json={"name": "Rex", "species": "dog"})
    await client.post("/animals", json={"name": "Rex", "species": "dog"})

    response = await client.post("/animals", json={"name": "Luna", "species": "cat"})

    assert response.status_code == 201


async def test_names_are_stripped(client):
    response = await client.post("/animals", json={"name": "  Bella ", "species": "cat"})
    assert response.json()["name"] == "Bella"


async def test_invalid_bodies_return_422_naming_the_field(client):
    cases = {
        "missing species": ({"name": "Rex"}, "species"),
        "unknown species": ({"name": "Rex", "species": "dragon"}, "species"),
        "blank name": ({"name": "   ", "species": "dog"}, "name"),
        "name too long": ({"name": "x" * 51, "species": "dog"}, "name"),
    }
    for label, (body, field) in cases.items():
        response = await client.post("/animals", json=body)
        assert response.status_code == 422, label
        assert response.json()["detail"][0]["loc"][-1] == field, label


async def test_get_animal(client):
    created = (await client.post("/animals", json={"name": "Milo", "species": "rabbit"})).json()

    response = await client.get(f"/animals/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


async def test_unknown_animal_returns_404(client):
    response = await client.get("/animals/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "No animal with id 999999."}


async def test_non_numeric_id_returns_422(client):
    assert (await client.get("/animals/rex")).status_code == 422


async def test_list_animals_sorted_and_filtered_by_species(client):
    for name, species in [("Rex", "dog"), ("Bella", "cat"), ("Ace", "dog")]:
        await client.post("/animals", json={"name": name, "species": species})

    everyone = (await client.get("/animals")).json()
    dogs = (await client.get("/animals", params={"species": "dog"})).json()

    assert [a["name"] for a in everyone] == ["Ace", "Bella", "Rex"]
    assert [a["name"] for a in dogs] == ["Ace", "Rex"]
