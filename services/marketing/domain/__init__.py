"""Marketing's business rules, free of infrastructure: coupons and their codes, discounts and
stacking, segments, the control-group split, the campaign report's statistics and the
repurchase models."""
