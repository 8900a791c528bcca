"""Pricing: regular prices, store and tier overrides, promotions, guard rails and markdowns."""
