"""What the sessions API's schema says that drf-spectacular cannot: HEAD /sessions/{id} (it
leaves HEAD out) and which of a selfie's two fields is required (a serializer has no anyOf)."""

import copy
from typing import Any

from liveness.schema import Schema

SESSION = "/sessions/{session_id}"
# capture.service.frame_values: ``frames`` when present, else ``selfie_image`` (400
# image_required when it is missing too).
ONE_OF_THE_FRAMES: Schema = {"anyOf": [{"required": ["selfie_image"]}, {"required": ["frames"]}]}


def head_of(get: Schema) -> Schema:
    """GET /sessions/{id}'s operation as HEAD answers it: its statuses and headers, no body
    (Django answers HEAD with the GET view and drops the body). Never 405: HEAD is allowed."""
    head = copy.deepcopy(get)
    head.update(
        operationId=f"{get['operationId']}_head",
        summary=f"{get['summary']}, without a body",
        description="GET's status and headers, no body.",
        responses={
            status: {"description": response["description"] or "GET's answer, no body."}
            for status, response in get["responses"].items()
            if status != "405"
        },
    )
    return head


def declare(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """drf-spectacular POSTPROCESSING_HOOKS entry, before liveness.schema.postprocess (which
    adds the headers every answer shares)."""
    operations = result["paths"][SESSION]
    operations["head"] = head_of(operations["get"])
    result["components"]["schemas"]["SelfieRequest"].update(copy.deepcopy(ONE_OF_THE_FRAMES))
    return result
