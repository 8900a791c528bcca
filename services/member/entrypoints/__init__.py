"""The member service's gRPC API and its SALES journal consumer."""
