"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed one-way delay, in both directions (no tc/netem,
no other hosts): Chromium -> proxy -> Jupyter server, the round trip of a Binder user without leaving loopback.

Each direction of a connection is one asyncio pipe: a chunk read at time t is written at t + delay, in order,
so the delay does not add up over a burst (a link with latency, not a slow one; bandwidth is not limited).
Both sockets of the proxy set TCP_NODELAY so the proxy adds no Nagle stall of its own.

    with DelayProxy(target_port=8888, one_way_ms=50) as proxy:
        ...  # browse http://127.0.0.1:{proxy.port}/
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

__all__ = ["DelayProxy"]


class DelayProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target_port`` with ``one_way_ms`` of delay each way."""

    def __init__(self, target_port: int, one_way_ms: float, host: str = "127.0.0.1") -> None:
        self.target_port = int(target_port)
        self.delay = float(one_way_ms) / 1000.0
        self.host = host
        self.port: int | None = None
        self.bytes = {"up": 0, "down": 0}  # browser -> server, server -> browser
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> DelayProxy:
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the event loop thread
    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._server.wait_closed())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    @staticmethod
    def _nodelay(writer: asyncio.StreamWriter) -> None:
        sock: Any = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_w.close()
            return
        self._nodelay(client_w)
        self._nodelay(server_w)
        await asyncio.gather(
            self._pipe(client_r, server_w, "up"), self._pipe(server_r, client_w, "down"), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            try:
                while True:
                    due, data = await queue.get()
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            finally:
                with contextlib.suppress(Exception):
                    writer.close()

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await reader.read(1 << 16)
                self.bytes[direction] += len(data)
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time(), b""))
        await sender
