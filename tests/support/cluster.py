"""Two mediagate nodes sharing one catalog, one object store and one sealing key: the scale-out
deployment on loopback.

Each node is its own uvicorn process with its own home (so nothing is shared through the
filesystem: staging, caches and key files are per node); what they share is what a real cluster
shares: a PostgreSQL catalog (a fresh schema, tests.support.pg), an S3 bucket on the moto server
(tests.support.moto), ``MEDIAGATE_SECRET_KEY`` and Redis. ``admin`` is an in-process gateway on the
same settings, for setup and for looking at the catalog. Tests pick the node of each request
themselves, alternating as a round-robin load balancer without sticky sessions would.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, free_port, make_home
from tests.support.moto import MotoServer, new_bucket_name
from tests.support.pg import fresh_schema

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Cluster:
    nodes: list[LiveServer]
    admin: Gateway
    env: dict[str, str]
    """The MEDIAGATE_* settings every node shares (catalog, storage, sealing key, Redis)."""

    @property
    def a(self) -> LiveServer:
        return self.nodes[0]

    @property
    def b(self) -> LiveServer:
        return self.nodes[1]


@dataclass
class Balancer:
    """A round-robin TCP load balancer on loopback: each new connection goes to the next node, no
    stickiness (HTTP keep-alive keeps a connection on its node, as an L4 balancer does)."""

    ports: list[int]
    port: int = field(default_factory=free_port)
    connections: list[int] = field(default_factory=list)
    """The node port each accepted connection went to, in order."""
    _listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Balancer:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        turn = itertools.cycle(self.ports)
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            target = next(turn)
            self.connections.append(target)
            try:
                upstream = socket.create_connection(("127.0.0.1", target))
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def cluster_env(moto: MotoServer, catalog_url: str, secret_key: str) -> dict[str, str]:
    return {
        **moto.env(new_bucket_name()),
        "MEDIAGATE_DATABASE_URL": catalog_url,
        "MEDIAGATE_SECRET_KEY": secret_key,
        "MEDIAGATE_REDIS_URL": REDIS_URL,
        "MEDIAGATE_ALLOW_PRIVATE_CALLBACKS": "1",
    }


@contextmanager
def two_nodes(root: Path, moto: MotoServer) -> Iterator[Cluster]:
    """Start two nodes on homes under ``root``; both are stopped (and their logs checked for
    tracebacks) afterwards."""
    with fresh_schema() as catalog_url:
        env = cluster_env(moto, catalog_url, Fernet.generate_key().decode())
        homes = [root / "node-a", root / "node-b"]
        settings = [make_home(home, **_fields(env)) for home in homes]  # the second finds it migrated
        nodes = [LiveServer(home, env=dict(env)) for home in homes]
        admin = build_gateway(settings[0], migrate=False)
        try:
            for node in nodes:
                node.start()
            yield Cluster(nodes, admin, env)
        finally:
            for node in nodes:
                node.stop()
            admin.catalog.close()
        for node in nodes:
            assert "Traceback" not in node.log(), node.log()[-5000:]


def _fields(env: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()}
