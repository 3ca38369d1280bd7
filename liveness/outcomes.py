"""What a /liveness request comes to: a verdict (``Judged``) or a rejection code. No HTTP here:
``liveness.responses.ANSWERS`` maps each code to the contract's status and body.

A *refusal* is the engine's (the image cannot be judged: 422, recorded, ``refused_code``); a
*rejection* is any answer other than a verdict, refusals included.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rejection:
    code: str  # a key of liveness.responses.ANSWERS
    detail: Mapping[str, object] = field(default_factory=dict)  # fills the answer's text
    retry_after: int | None = None  # seconds, for a Retry-After header


class Rejected(Exception):
    """Ends the request early with ``rejection``."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.code)
        self.rejection = rejection


@dataclass(frozen=True)
class Judged:
    is_live: bool
    score: float
    profile: str
    capture: str
    frames: int = 1  # a session's burst judges up to three


Outcome = Judged | Rejection
