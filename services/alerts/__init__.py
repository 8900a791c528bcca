"""Alerts: the operations feed — what needs a person's attention in the chain, with its likely causes.

The service owns its alerts, their webhooks and deliveries, and projections of the facts that
explain a finding (price changes and promotions, stock-outs, labels given up, campaigns, the
SALES journal's last entry per terminal). It learns everything from other contexts' integration
events, never from their tables, and publishes AlertRaised / AlertStateChanged on ALERTS.
"""
