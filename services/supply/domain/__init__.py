"""Supply's business rules, free of infrastructure: contracts and what each settlement mode
owes, statements to the fen, purchase-order quantities and tolerances, invoice matching and
supplier scorecards."""
