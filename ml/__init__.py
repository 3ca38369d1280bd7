"""Face liveness engine: bytes or an image in, a verdict out. Knows nothing of Django or HTTP."""

import sys

# `import openvino` imports its model converter, which sends a usage event to Google Analytics
# through openvino-telemetry (a dependency of the wheel) from a process forked in a thread and
# never reaped: each gunicorn worker kept a zombie child from boot, and an on-premises service
# must not call out. Without that module the converter uses its own no-op stub; we never
# convert models at run time (install_models reads ONNX/IR with the runtime alone).
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # None: import refused
