async def test_create_adopter(client):
    response = await client.post("/adopters", json={"name": "Ana", "email": "Ana@Example.org"})

    assert response.status_code == 201
    assert response.json()["email"] == "ana@example.org"


async def test_duplicate_email_is_409_whatever_the_case(client):
    await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})

    response = await client.post("/adopters", json={"name": "Ana B.", "email": "ANA@example.org"})

    assert response.status_code == 409
    assert response.json() == {"detail": "An adopter with e-mail 'ana@example.org' already exists."}


async def test_invalid_email_returns_422(client):
    response = await client.post("/adopters", json={"name": "Ana", "email": "not-an-email"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


async def test_get_adopter_and_404(client):
    created = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()

    assert (await client.get(f"/adopters/{created['id']}")).json() == created
    missing = await client.get("/adopters/999999")
    assert (missing.status_code, missing.json()) == (404, {"detail": "No adopter with id 999999."})
