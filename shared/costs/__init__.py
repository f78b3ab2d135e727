"""Per-video cost: the versioned price table, pricing of stage runs (pure), and the ledger that records
cost entries as stage runs are recorded."""
