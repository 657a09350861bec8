"""Request size cap at the edge of the web server: a pure-ASGI middleware that answers 413 to large bodies.

One cap holds for every route but those given their own (the upload routes take files up to the upload limit).

A declared Content-Length over the cap is refused before any of the body is read; a body without one (chunked)
is counted as it streams to the app, and refused the moment it passes the cap, so nothing large is ever held
(what a route leaves unread is counted and dropped before its reply goes out).
The connection stays usable: uvicorn reads and discards the rest of a refused body, and the client gets the 413.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised from the app's receive() once the streamed body passes the cap; the middleware answers 413."""


class BodyLimit:
    """Refuse HTTP request bodies over `max_bytes` with 413 and a one-line JSON reason, on every route; a path in
    `limits` (exact, e.g. "/gradio_api/upload") has its own cap instead."""

    def __init__(self, app: App, max_bytes: int, limits: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.limits = dict(limits or {})

    def limit_for(self, scope: dict[str, Any]) -> int:
        """The cap of this request's path; a trailing slash does not change it."""
        path = scope.get("path", "")
        return self.limits.get(path.rstrip("/") or path, self.max_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await self.refuse(send, limit)
            return
        guard = CountingGuard(receive, send, limit)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.over:  # a real error of the app: not ours to hide
                raise
        if guard.over and not guard.started:
            await self.refuse(send, limit)

    @staticmethod
    async def refuse(send: Send, limit: int) -> None:
        """The 413 reply, short enough to read in a terminal."""
        body = json.dumps({"error": f"request body too large: the limit is {limit:,} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class CountingGuard:
    """receive/send for the app: counts body bytes as they arrive, and mutes the app's reply once over the cap."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int):
        self._receive, self._send, self.max_bytes = receive, send, max_bytes
        self.received = 0
        self.body_done = False
        self.over = False
        self.started = False

    async def receive(self) -> Message:
        if self.over:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.over = True
                raise BodyTooLarge(f"request body passed {self.max_bytes} bytes")
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and not self.over:
            await self.drain()
        if self.over and not self.started:  # the app's reply to a cut body (400, 404, 422...): the 413 replaces it
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def drain(self) -> None:
        """Count (and drop) what the app left unread before it replies, so a route that never reads still says 413."""
        try:
            while not self.body_done:
                await self.receive()
        except BodyTooLarge:
            pass


def declared_length(scope: dict[str, Any]) -> int | None:
    """The Content-Length header as a number, or None when absent (uvicorn rejects malformed ones itself)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
