"""Operator console, the top of the layering: the tenant admin extended with usage charts,
target-APCER thresholds and calibration uploads, and the /metrics scrape."""
