"""bench/delay_proxy.py: a fixed one-way delay each way, bytes intact and in order, on loopback only."""

from __future__ import annotations

import socket
import threading
import time

from bench.delay_proxy import DelayProxy


def _echo_server() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_round_trip_is_twice_the_one_way_delay_and_bytes_are_intact() -> None:
    srv, port = _echo_server()
    with DelayProxy(port, one_way_ms=40) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = bytes(range(256)) * 400  # 100 kB: several chunks, order must hold
        t0 = time.perf_counter()
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += c.recv(65536)
        rtt = time.perf_counter() - t0
        assert got == payload
        assert 0.08 <= rtt < 1.0, rtt  # 2 x 40 ms, not one delay per chunk
        assert proxy.bytes["up"] == proxy.bytes["down"] == len(payload)
    srv.close()
