"""Marketing: segments, campaigns with control groups, coupons redeemed exactly once, and ROI.

The service owns its projections (members, purchases, items — built from other services'
events, never read from their tables), its segments, campaigns and coupons.
"""
