"""The long-lived Hamilton process: wiring, service loop, settings, control, status, release
sensor, metrics."""
