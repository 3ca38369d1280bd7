"""The selfie_image field: base64, optionally behind a ``data:image/...;base64,`` prefix."""

import binascii
import re

import pybase64

DATA_URI_PREFIX = re.compile(r"^\s*data:[^,;]*(;[^,;]*)*;base64,", re.IGNORECASE)
WHITESPACE = re.compile(r"\s+")


class Base64Error(ValueError):
    """The field is not valid base64."""


def strip_data_uri(value: str) -> str:
    return DATA_URI_PREFIX.sub("", value, count=1)


def decode_base64(value: str) -> bytes:
    """Bytes of a standard or URL-safe base64 string; tolerant of line breaks and lost padding."""
    # pybase64 (SIMD): 0.2 ms instead of the standard library's 12 ms for a phone photo.
    try:  # the common case, strict standard base64, without copying the string three times
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    text = WHITESPACE.sub("", value)
    text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Base64Error(str(exc)) from exc
