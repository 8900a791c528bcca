"""The operations console: server-rendered pages for store managers and headquarters.

A client of the gateway's public HTTP API only (never a service's gRPC, database or NATS):
staff sign in with the client credentials of their staff registration, the console keeps
the access token server-side in its session, and every figure on a page comes from a
gateway route called with that token, so the gateway's scopes and ownership apply.
"""
