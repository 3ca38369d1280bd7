"""POST /liveness the way the Facia guide's test script does, with typed errors."""

from __future__ import annotations

import base64
import json
import mimetypes
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCEPTED_TYPES = ("image/jpeg", "image/png")
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class FaciaError(Exception):
    """Base class; ``exit_code`` is what the command line exits with."""

    exit_code = 6

    def __init__(self, message: str, status: int | None = None, request_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class UsageError(FaciaError):
    exit_code = 2


class AuthError(FaciaError):
    exit_code = 3


class ImageRejected(FaciaError):
    exit_code = 4


class QuotaExceeded(FaciaError):
    exit_code = 5


class ServiceError(FaciaError):
    """Network failure, 5xx, or an answer the client does not understand."""

    exit_code = 6


ERRORS_BY_STATUS: dict[int, type[FaciaError]] = {
    400: ImageRejected,
    401: AuthError,
    413: ImageRejected,
    422: ImageRejected,
    429: QuotaExceeded,
}


@dataclass(frozen=True)
class Verdict:
    is_live: bool
    liveness_score: float
    request_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "is_live": int(self.is_live),
            "liveness_score": self.liveness_score,
            "request_id": self.request_id,
        }


def mime_type_of(path: Path, data: bytes) -> str:
    """The file's type from its name (as the guide's script does), else from its first bytes."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed in ACCEPTED_TYPES:
        return guessed
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    raise ImageRejected(f"{path} is not a PNG or JPEG image")


def encode_image(path: Path) -> str:
    """``data:<mime>;base64,<...>``, as in the guide's ``encode_image_with_mime``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return f"data:{mime_type_of(path, data)};base64,{base64.b64encode(data).decode('ascii')}"


def _reply_text(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:200]
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or payload)
    return str(payload)


class FaciaClient:
    def __init__(self, url: str, hash_id: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url must start with http:// or https://, not {url!r}")
        if not hash_id:
            raise UsageError("a hash_id is required (--hash-id or FACIA_HASH_ID)")
        self.url = url.rstrip("/")
        self.hash_id = hash_id
        self.timeout = timeout

    def check(self, image: str | Path) -> Verdict:
        body = json.dumps({"hash_id": self.hash_id, "selfie_image": encode_image(Path(image))})
        status, headers, reply = self._post("/liveness", body.encode("utf-8"))
        request_id = headers.get("X-Request-ID", "")
        if status == 201:
            return self._verdict(reply, request_id)
        error = ERRORS_BY_STATUS.get(status, ServiceError)
        raise error(f"HTTP {status}: {_reply_text(reply)}", status, request_id)

    def _verdict(self, reply: bytes, request_id: str) -> Verdict:
        try:
            result = json.loads(reply)["liveness_result"]
            return Verdict(bool(result["is_live"]), float(result["liveness_score"]), request_id)
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(f"unexpected answer: {reply[:200]!r}", 201, request_id) from exc

    def _post(self, path: str, body: bytes) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceError(f"cannot reach {self.url}: {reason}") from exc
