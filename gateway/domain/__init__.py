"""Plain-Python rules of what the gateway owns; imports nothing from SQL, gRPC, NATS or FastAPI."""
