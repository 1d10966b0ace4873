"""Reference "floor" server: a bare ASGI app on uvicorn answering a constant (no framework).

The least a Python HTTP server can do per request on this machine: what every framework,
validation and model adds is measured against it.

    python bench/ref_floor.py --port 8104
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn

ANSWER = json.dumps({"predictions": [{"label": 0, "probabilities": [0.1] * 10}]}).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the body, answer the constant."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8104)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
