"""Telemetry, the bottom of the layering: Prometheus metrics, JSON logs, request middleware.
Knows no app: callers pass ids and names, never model instances."""
