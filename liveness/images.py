"""The selfie_image field: base64, optionally behind a ``data:image/...;base64,`` prefix."""

import base64
import binascii
import re

DATA_URI_PREFIX = re.compile(r"^\s*data:[^,;]*(;[^,;]*)*;base64,", re.IGNORECASE)
WHITESPACE = re.compile(r"\s+")


class Base64Error(ValueError):
    """The field is not valid base64."""


def strip_data_uri(value: str) -> str:
    return DATA_URI_PREFIX.sub("", value, count=1)


def decode_base64(value: str) -> bytes:
    """Bytes of a standard or URL-safe base64 string; tolerant of line breaks and lost padding."""
    try:  # the common case, strict standard base64, without copying the string three times
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    text = WHITESPACE.sub("", value)
    text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Base64Error(str(exc)) from exc
