"""``python -m bench.otlp_sink PORT``: an OTLP/gRPC trace collector that accepts and drops every span.

Lets the gateway run with tracing fully on (spans recorded, batched and exported over
gRPC) without a real collector; the sink prints how many spans it received when stopped.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class DroppingTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        count = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self._lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> int:
    port = int(sys.argv[1])
    service = DroppingTraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(1)
    print(service.spans, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
