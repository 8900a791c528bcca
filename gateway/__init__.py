"""The API gateway: the one HTTP front door of the retail platform.

It authenticates, authorises and validates callers, then translates HTTP/JSON into gRPC
calls to the services and into events on the sales journal. ``gateway.bootstrap`` wires it.
"""
