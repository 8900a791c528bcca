"""The alerts context's rules: plain Python, no SQL, gRPC or NATS."""
