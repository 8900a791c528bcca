"""Who is calling and what they may do: bearer-token authentication, rate limits, scope checks."""
