"""The payment hub: processor adapters, exactly-once ledger, risk decisions, audit trail
(see docs/payments.md)."""
