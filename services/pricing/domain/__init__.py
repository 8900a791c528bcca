"""Prices, promotions, guard rails and markdown suggestions in plain Python (no I/O)."""
