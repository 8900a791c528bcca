"""Idempotent POSTs: the replay of a key's first answer, and the records that keep it."""
