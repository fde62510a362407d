"""Shared test set-up: no network access beyond this machine, quiet TensorFlow."""

from __future__ import annotations

import os
import socket

import pytest
from offline import guarded_connect, guarded_connect_ex, guarded_getaddrinfo

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with outbound network blocked (loopback stays open for Jupyter)."""
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
