"""Shared test set-up: no network access beyond this machine, quiet TensorFlow."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlocked(RuntimeError):
    """Raised when code under test tries to reach a non-local address."""


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else ""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard_connect(self: socket.socket, address: object) -> object:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; the suite runs offline")
    return _real_connect(self, address)


def _guard_connect_ex(self: socket.socket, address: object) -> object:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; the suite runs offline")
    return _real_connect_ex(self, address)


def _guard_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if host not in (None, "localhost", "127.0.0.1", "::1", b"localhost"):
        try:
            ipaddress.ip_address(host if isinstance(host, str) else "")
        except ValueError:
            raise NetworkBlocked(f"test tried to resolve {host!r}; the suite runs offline") from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with outbound network blocked (loopback stays open for Jupyter)."""
    monkeypatch.setattr(socket.socket, "connect", _guard_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guard_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guard_getaddrinfo)
