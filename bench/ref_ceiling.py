"""Reference "ceiling" server: a FastAPI ``async def`` endpoint, a pydantic body, a constant answer.

No model at all: the fastest a FastAPI + pydantic predict route can be on this machine.

    python bench/ref_ceiling.py --port 8102
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    instances: list[list[float]]


class Prediction(BaseModel):
    label: int
    probabilities: list[float]


class Answer(BaseModel):
    predictions: list[Prediction]


CONSTANT = Prediction(label=0, probabilities=[0.1] * 10)


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(body: Body) -> Answer:
        return Answer(predictions=[CONSTANT for _ in body.instances])

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
