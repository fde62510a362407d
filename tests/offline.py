"""Block network access beyond this machine (loopback stays open for Jupyter).

Used in two ways: ``tests/conftest.py`` patches the test process per test, and
``tests/test_notebooks.py`` copies this file into each notebook kernel's IPython startup
directory, where running it installs the guard for the whole kernel.  Standard library only.
"""

from __future__ import annotations

import ipaddress
import socket

_real = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "getaddrinfo": socket.getaddrinfo,
}


class NetworkBlocked(OSError):
    """Raised when code under test tries to reach a non-local address."""


def is_local(address: object) -> bool:
    """Whether a socket address stays on this machine (AF_UNIX paths, loopback IPs, localhost)."""
    if isinstance(address, (str, bytes)):
        return True
    host = address[0] if isinstance(address, tuple) and address else ""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def guarded_connect(self: socket.socket, address: object) -> object:
    if not is_local(address):
        raise NetworkBlocked(f"network access blocked: tried to connect to {address!r} (the tests run offline)")
    return _real["connect"](self, address)


def guarded_connect_ex(self: socket.socket, address: object) -> object:
    if not is_local(address):
        raise NetworkBlocked(f"network access blocked: tried to connect to {address!r} (the tests run offline)")
    return _real["connect_ex"](self, address)


def guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if host not in (None, "localhost", "127.0.0.1", "::1", b"localhost"):
        try:
            ipaddress.ip_address(host if isinstance(host, str) else "")
        except ValueError:
            raise NetworkBlocked(f"network access blocked: tried to resolve {host!r} (the tests run offline)") from None
    return _real["getaddrinfo"](host, *args, **kwargs)


def install() -> None:
    """Patch the socket module for the rest of this process."""
    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]

