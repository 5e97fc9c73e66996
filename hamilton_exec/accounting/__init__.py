"""What Hamilton records: the trade ledger and the event sink to the Brain Library."""
