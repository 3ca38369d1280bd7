"""Operations: Prometheus metrics, JSON logs, the admin usage console."""
