"""Face liveness engine: bytes or an image in, a verdict out. Knows nothing of Django or HTTP."""
