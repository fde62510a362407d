import socket

import pytest
from offline import NetworkBlocked


def test_outbound_connections_are_blocked():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(NetworkBlocked):
        s.connect(("93.184.216.34", 80))
    s.close()


def test_dns_lookups_are_blocked():
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("storage.googleapis.com", 443)


def test_loopback_stays_open():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.connect(server.getsockname())
    client.close()
    server.close()
