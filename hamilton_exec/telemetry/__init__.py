"""What Hamilton exports to Prometheus: the service metrics and the market-data feed health."""
