"""Pricing adapters: persistence, outbound clients and shelf-label stations."""
