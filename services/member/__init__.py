"""The member service: one member across every channel, points that are always right, protected personal data."""
