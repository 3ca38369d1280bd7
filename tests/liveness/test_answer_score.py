"""liveness_score is answered to 7 places, as in the contract's example (0.9862353); is_live is
decided on the exact score, and the keys and types of the answer are the contract's."""

import json
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Tenant
from capture import service
from capture.models import CaptureSession
from liveness.answers import Judged, respond
from liveness.models import LivenessCheck
from tests.conftest import LIVE_JPG, Post, data_uri

CLIPPED = 0.9989999999999999  # the engine's clip at 0.999, as the map's arithmetic left it


def test_a_clipped_score_is_answered_0_999() -> None:
    response = respond(Judged(True, CLIPPED, "fast", "frame"))
    assert response.status_code == 201
    assert b'"liveness_score": 0.999}' in response.content
    body = json.loads(response.content)
    verdict = {"is_live": 1, "liveness_score": 0.999}
    assert body == {"liveness_result": verdict, "message": "Success"}
    assert type(body["liveness_result"]["liveness_score"]) is float


@pytest.mark.parametrize("score", [0.16925619588358065, 1e-9, 0.0, 1.0, 0.5])
def test_every_score_goes_out_with_at_most_7_places(score: float) -> None:
    body = json.loads(respond(Judged(False, score, "fast", "crop")).content)
    answered = body["liveness_result"]["liveness_score"]
    assert type(answered) is float and answered == round(score, 7)
    assert len(repr(answered).split(".")[-1]) <= 7 or "e" in repr(answered)


def test_the_verdict_is_the_exact_scores_not_the_answered_ones() -> None:
    # Answered 0.999 but below a threshold of 0.999: spoof, as the exact score says.
    body = json.loads(respond(Judged(CLIPPED >= 0.999, CLIPPED, "fast", "frame")).content)
    assert body["liveness_result"] == {"is_live": 0, "liveness_score": 0.999}


@pytest.mark.usefixtures("warm_engine")
def test_a_threshold_between_the_exact_and_the_answered_score_follows_the_exact_one(
    make_tenant: Callable[..., tuple[Tenant, str]], post_liveness: Post
) -> None:
    """A real image through the API twice: the second time with the threshold set between
    its exact score (recorded) and the one answered, so the two would disagree."""
    tenant, secret = make_tenant(name="Edge")
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    first = post_liveness(body)
    assert first.status_code == 201
    exact = LivenessCheck.objects.get(tenant=tenant).score
    assert exact is not None
    answered = first.json()["liveness_result"]["liveness_score"]
    assert answered == round(exact, 7) and answered != exact  # a real score has more places
    # Strictly above the exact score and at most the answered one, or the other way round.
    threshold = math.nextafter(exact, 2.0) if answered > exact else exact
    expected: dict[str, Any] = {"is_live": int(exact >= threshold), "liveness_score": answered}
    assert expected["is_live"] != int(answered >= threshold)  # the two would disagree here
    Tenant.objects.filter(pk=tenant.pk).update(threshold=threshold)
    second = post_liveness(body)
    assert second.status_code == 201
    assert LivenessCheck.objects.filter(tenant=tenant).latest("pk").score == exact  # same image
    assert second.json()["liveness_result"] == expected


@pytest.mark.django_db
def test_a_sessions_verdict_is_answered_in_the_same_shape() -> None:
    session = CaptureSession.objects.create(
        tenant=Tenant.objects.create(name="Sessions"),
        token_digest="0" * 64,
        expires_at=timezone.now() + timedelta(minutes=5),
        state=CaptureSession.DONE,
        is_live=False,
        score=CLIPPED,
        capture="frame",
    )
    assert service.describe(session)["liveness_result"] == {"is_live": 0, "liveness_score": 0.999}
