"""Errors the engine raises; the HTTP edge maps them to status codes."""


class ImageError(ValueError):
    """The bytes are not a decodable PNG or JPEG (or declare too many pixels)."""


class ScansOverLimit(ImageError):
    """A JPEG with more scans than the caller's own bound, below what any encoder may write
    (``ml.decode.MAX_JPEG_SCANS``): a valid progressive file, refused only for its cost."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JPEG with more than {limit} scans")
        self.limit = limit


class PixelsOverLimit(ImageError):
    """An image with more pixels than the caller's own bound, within what a camera writes
    (``ml.decode.MAX_PIXELS``): a valid file, refused only for its cost."""

    def __init__(self, width: int, height: int, limit: int) -> None:
        super().__init__(f"image declares {width}x{height} pixels, over the {limit} limit")
        self.width, self.height, self.limit = width, height, limit


class FaceRefused(Exception):
    """The image decoded but cannot be judged (no face, ...).

    ``code`` is stable and machine readable; ``message`` is a sentence for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelInstallError(RuntimeError):
    """A model file is missing or its checksum differs from the expected one."""


class ModelDirUnwritable(ModelInstallError):
    """The install folder (MODEL_DIR) cannot be written: read-only, full, or not a directory."""


class ModelDirRefused(ModelInstallError):
    """The install folder holds what the installer did not write, or overlaps the source:
    replacing it would delete them."""


class ModelUnavailable(ModelInstallError):
    """A model left for its first use could not be compiled (a broken or missing file)."""


class ModelFault(ModelUnavailable):
    """A model gave a non-finite output (NaN or inf): a corrupt or broken model, never a score."""
