"""A fake Supabase Realtime server at its websocket boundary (Phoenix
protocol, vsn 1.0.0): accepts ``phx_join`` with ``postgres_changes`` bindings
and acknowledges each with a server id, answers heartbeats, and pushes
``postgres_changes`` INSERT messages to every joined channel on demand."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from datetime import UTC, datetime
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve


class FakeRealtimeServer:
    def __init__(self) -> None:
        self.joins: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._ids = itertools.count(1000)
        self._subscribers: list[tuple[ServerConnection, str, list[int]]] = []
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        """What the client is given as SUPABASE_URL (it appends /realtime/v1)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        return self

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def joined(self) -> int:
        return len(self._subscribers)

    def insert(self, table: str, record: dict[str, Any]) -> None:
        """Push an INSERT on ``public.<table>`` to every channel bound to it."""
        asyncio.run_coroutine_threadsafe(self._push(table, record), self._loop).result(5)

    async def _push(self, table: str, record: dict[str, Any]) -> None:
        data = {"schema": "public", "table": table, "commit_timestamp": datetime.now(UTC).isoformat(),
                "type": "INSERT", "errors": None, "columns": [], "record": record}
        for ws, topic, ids in list(self._subscribers):
            await ws.send(json.dumps({"topic": topic, "event": "postgres_changes", "ref": None,
                                      "payload": {"ids": ids, "data": data}}))

    async def _handle(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path if ws.request else "")
        async for raw in ws:
            message = json.loads(raw)
            topic, event, ref = message["topic"], message["event"], message.get("ref")
            if event == "heartbeat":
                await self._reply(ws, topic, ref, {})
            elif event == "phx_join":
                self.joins.append(message)
                bindings = message["payload"]["config"].get("postgres_changes") or []
                acked = [{**b, "id": next(self._ids), "filter": b.get("filter")} for b in bindings]
                self._subscribers.append((ws, topic, [b["id"] for b in acked]))
                await self._reply(ws, topic, ref, {"postgres_changes": acked})
            elif event in ("access_token", "phx_leave"):
                await self._reply(ws, topic, ref, {})

    @staticmethod
    async def _reply(ws: ServerConnection, topic: str, ref: Any, response: dict[str, Any]) -> None:
        await ws.send(json.dumps({"topic": topic, "event": "phx_reply", "ref": ref,
                                  "payload": {"status": "ok", "response": response}}))
