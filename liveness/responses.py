"""The exact response bodies of the contract, in one place."""

from typing import Any

from django.http import JsonResponse

IMAGE_REQUIRED = "Selfie_image is required and must be a JPEG, JPG or PNG."
IMAGE_INVALID = "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."
LIMIT_REACHED = "Your request limit has been reached."
SUCCESS = "Success"


def error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def message(text: str, status: int) -> JsonResponse:
    return JsonResponse({"message": text}, status=status)


def success(is_live: bool, score: float) -> JsonResponse:
    body = {
        "liveness_result": {"is_live": int(is_live), "liveness_score": float(score)},
        "message": SUCCESS,
    }
    return JsonResponse(body, status=201)
