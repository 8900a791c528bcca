"""Supply: purchase orders from the forecast, goods receipts into stock, supplier settlement and scorecards.

The service owns its suppliers, contracts, purchase orders, receipts, accruals and statements;
it learns items (and their supplier) from pricing's ``ItemChanged``, suggestions from
inventory's ``ReplenishmentSuggested`` and sales from the SALES journal, never from another
service's tables.
"""
