"""The ledger: the event spine and (later) the transparency log."""
