"""Orders out: the broker protocol, the paper and live brokers, the exchange clock, reconcile."""
