"""A small TCP load balancer for the local cluster: ``python -m devstack.balancer``.

What a Kubernetes Service does for the cluster profile (``make run-cluster``): one stable
loopback address in front of the replicas of a component. Each new client connection goes
to the next backend in turn; a backend that refuses the connection (stopped, killed,
restarting) is skipped for that connection and the next one is tried, so that a client
only sees an error when no replica accepts. Bytes are copied both ways unchanged (HTTP/1.1
for the gateways, HTTP/2 for gRPC), and when either side closes, the other is closed too.

Like a Service's kube-proxy rules, it balances connections, not requests: a gRPC client
keeps its connection and so its replica until that connection breaks; it then reconnects
through the balancer and lands on a live replica.

No package fits this better: HAProxy and Envoy are not on PyPI, and the balancer must
come up with the project's own ``make`` targets on a machine with only Python. It is the
standard library's asyncio and nothing else, some 80 lines, and used only locally.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal
import sys
from collections.abc import Sequence

log = logging.getLogger("devstack.balancer")
COPY_CHUNK = 64 * 1024
CONNECT_TIMEOUT = 2.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(COPY_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


class Balancer:
    """Round robin over ``backends`` (``(host, port)``), skipping any that refuse a connection."""

    def __init__(self, backends: Sequence[tuple[str, int]]) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = list(backends)
        self._turn = itertools.cycle(range(len(self.backends)))

    async def _open_backend(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        first = next(self._turn)
        for offset in range(len(self.backends)):
            host, port = self.backends[(first + offset) % len(self.backends)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                log.info("backend %s:%d refused a connection; trying the next", host, port)
        return None

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = await self._open_backend()
        if backend is None:
            log.warning("no backend accepted a connection")
            client_writer.close()
            return
        backend_reader, backend_writer = backend
        try:
            await asyncio.gather(_pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer))
        finally:
            for writer in (client_writer, backend_writer):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host, int(port)


async def serve(listen: tuple[str, int], backends: Sequence[tuple[str, int]]) -> None:
    balancer = Balancer(backends)
    server = await asyncio.start_server(balancer.handle, *listen, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("balancing %s:%d over %s", *listen, ", ".join(f"{h}:{p}" for h, p in backends))
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.balancer", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, required=True, help="host:port to accept connections on")
    parser.add_argument("--backend", type=_address, action="append", required=True, help="host:port (repeat)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.listen, args.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
