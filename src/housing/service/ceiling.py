"""The benchmark's ceiling: FastAPI taking the same ``House`` body, answering a constant.

`housing bench` serves it with the same uvicorn flags as the service, so the difference is
what the service does per request (predict, log, metrics), not the HTTP stack.
"""

from __future__ import annotations

from fastapi import FastAPI

from housing.service.schemas import House


def create_app() -> FastAPI:
    """A bare app: POST /predict validates a House (all its rules) and returns a constant."""
    app = FastAPI()

    @app.post("/predict")
    async def predict(house: House) -> dict[str, float]:  # type: ignore[valid-type]
        return {"prediction": 1.0}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
