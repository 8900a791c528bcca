"""Running the gateway: readiness, housekeeping of its tables, the demo retailer's clients."""
