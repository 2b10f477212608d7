# Dispatch from a FastAPI route: TestClient runs the app's lifespan, which the provider composed.
from fastapi.testclient import TestClient

from bootstrap.application import app

with TestClient(app.fastapi) as client:
    response = client.post("/users/5/welcome")
    response.raise_for_status()
    print(response.json()["result"])
