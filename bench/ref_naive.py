"""Reference "naive" server: a FastAPI ``def`` endpoint, a pydantic body, one forward per request.

python bench/ref_naive.py --model models/cnn/1/model.pt --port 8101
"""

from __future__ import annotations

import argparse

import torch
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


def create_app(model_path: str) -> FastAPI:
    """The usual tutorial server: the forward runs in FastAPI's thread pool, one per request."""
    module = torch.jit.load(model_path).eval()
    app = FastAPI()

    @app.get("/")
    def root() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: Body) -> Answer:
        with torch.inference_mode():
            probabilities = torch.softmax(module(torch.tensor(body.instances)), dim=1)
        return Answer(
            predictions=[
                Prediction(label=int(p.argmax()), probabilities=p.tolist()) for p in probabilities
            ]
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    torch.set_num_threads(1)
    uvicorn.run(
        create_app(args.model),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
