"""Members, identities, merges, points, tiers and lifecycle in plain Python."""
