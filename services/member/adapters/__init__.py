"""Persistence, encryption of personal data and integration events of the member service."""
