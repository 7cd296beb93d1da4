"""The floor: a minimal ASGI app returning a fixed 2 KB JSON, served by the same uvicorn."""

from __future__ import annotations

import json
from typing import Any

_shell = {"RequestId": "0" * 36, "PagingInfo": {"TotalCount": 2000, "Padding": ""}}
_pad = 2048 - len(json.dumps(_shell).encode())
_shell["PagingInfo"]["Padding"] = "x" * _pad  # type: ignore[index]
BODY = json.dumps(_shell).encode()
HEADERS = [(b"content-type", b"application/json;charset=utf-8"), (b"content-length", b"2048")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
