"""The gateway's connections to the outside: its database, NATS, and the gRPC backends."""
