"""The sessions API's bodies, for the OpenAPI schema (the views parse by hand)."""

from rest_framework import serializers

from liveness.schema import Body, LivenessResultSerializer, Schema
from ml import headturn
from ml.quality import REFUSALS

CAPTURE_KINDS = ["frame", "crop"]
TOKEN_CODES = ["token_missing", "token_invalid", "token_expired"]
# What each token call's head-turn challenge can refuse it with (capture.challenge).
QUALITY_REFUSALS = ["challenge_unreadable"]
RESTART_REFUSALS = [
    "challenge_not_required",
    "challenge_already_passed",
    "challenge_tries_exhausted",
]
SELFIE_REFUSALS = [
    "challenge_not_passed",
    "challenge_failed",
    "challenge_tries_exhausted",
    "selfie_held",
]


class SessionCreateRequestSerializer(Body):
    hash_id = serializers.CharField(help_text="The tenant's credential (from your backend only).")


class SessionCreatedSerializer(Body):
    session_id = serializers.UUIDField()
    token = serializers.CharField(
        help_text="For the browser: `Authorization: Bearer <token>` on quality and selfie."
    )
    expires_at = serializers.DateTimeField(help_text="UTC; `SESSION_TTL_S` after creation.")
    expires_in = serializers.IntegerField(help_text="Seconds until expires_at.")


class FrameRequestSerializer(Body):
    selfie_image = serializers.CharField(
        help_text="PNG or JPEG as base64, optionally prefixed with `data:image/...;base64,`."
    )
    more_time = serializers.BooleanField(
        required=False,
        help_text="A head-turn challenge's step running: the person asked for more time "
        "(another step's time limit, while `extensions_left` is above 0). `true` or `false`; "
        'any other value (`"true"`, `1`, `null`) is refused (400).',
    )


class SelfieRequestSerializer(Body):
    selfie_image = serializers.CharField(required=False, help_text="One full-resolution frame.")
    frames = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        max_length=3,
        required=False,
        help_text=(
            "Or a burst of up to 3 frames taken within a second (fused: "
            "docs/integrator/sessions.md, Burst)."
        ),
    )


class GateFailureSerializer(Body):
    code = serializers.ChoiceField(choices=list(REFUSALS))
    error = serializers.CharField(help_text="The fixed sentence of /liveness for this code.")


class FaceBoxSerializer(Body):
    x = serializers.FloatField()
    y = serializers.FloatField()
    w = serializers.FloatField()
    h = serializers.FloatField()
    score = serializers.FloatField()


INSTRUCTIONS = list(headturn.INSTRUCTIONS)
CHALLENGE_STATES = list(headturn.STATES)
CHALLENGE_CODES = list(headturn.FAIL_CODES)


class ChallengeSerializer(Body):
    instruction = serializers.ChoiceField(
        choices=INSTRUCTIONS, help_text="What to do now; the person's own left and right."
    )
    step = serializers.IntegerField(
        help_text="The step asked (or the one to come while `look_straight`), from 1; 0 while "
        "the frontal reference is taken, and in a failure before it was."
    )
    steps = serializers.IntegerField(help_text="How many steps this challenge has.")
    done = serializers.IntegerField(help_text="Steps reached so far.")
    state = serializers.ChoiceField(choices=CHALLENGE_STATES)
    code = serializers.ChoiceField(
        choices=CHALLENGE_CODES, required=False, help_text="Why it failed (state failed only)."
    )
    error = serializers.CharField(required=False, help_text="Its sentence (state failed only).")
    tries_left = serializers.IntegerField(
        help_text="Challenges this session may still start (CAPTURE_CHALLENGE_TRIES in all)."
    )
    extensions_left = serializers.IntegerField(
        required=False,
        help_text="Times this session may still ask for more time (`more_time`; "
        "CAPTURE_CHALLENGE_EXTENSIONS in all, across its challenges).",
    )


# The challenge's body, optional: drf-spectacular drops an empty serializer's body, and the
# schema then said no body while the service answered none 400 (a generated client sends none).
CHALLENGE_START_REQUEST: Schema = {
    "type": "object",
    "description": "Optional: no body, or any JSON object, ignored (the server alone chooses "
    "the steps). A body that is not a JSON object is refused (400).",
}


class ChallengeStartedSerializer(Body):
    challenge = ChallengeSerializer()


class QualityResultSerializer(Body):
    passed = serializers.BooleanField()
    code = serializers.ChoiceField(
        choices=list(REFUSALS), allow_null=True, help_text="First failed gate, or null."
    )
    error = serializers.CharField(allow_null=True, help_text="Its sentence, or null.")
    failures = GateFailureSerializer(many=True, help_text="Every failed gate, in order.")
    face = FaceBoxSerializer(
        allow_null=True,
        help_text="Largest face, in the frame's pixels (those of `width` and `height`: a large "
        "JPEG's reduced decode scaled back).",
    )
    capture = serializers.ChoiceField(
        choices=CAPTURE_KINDS, allow_null=True, help_text="null without a face."
    )
    width = serializers.IntegerField(
        help_text="The frame's width in its own pixels, as displayed (EXIF orientation "
        "applied), whatever size it was decoded at."
    )
    height = serializers.IntegerField(help_text="The frame's height, as `width`.")
    challenge = ChallengeSerializer(
        required=False,
        help_text="A head_turn tenant's sessions, and a when_unsure session once its selfie is "
        "held: the challenge after this frame (the first frame starts it).",
    )


class HeldChallengeSerializer(Body):
    state = serializers.ChoiceField(choices=["pending"])
    tries_left = serializers.IntegerField(
        help_text="Challenges this session may still start (CAPTURE_CHALLENGE_TRIES in all)."
    )
    extensions_left = serializers.IntegerField(
        required=False,
        help_text="Times this session may still ask for more time (`more_time`; "
        "CAPTURE_CHALLENGE_EXTENSIONS in all, across its challenges).",
    )


class SelfieReceivedSerializer(Body):
    session_id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=["received"])
    frames = serializers.IntegerField()
    challenge = HeldChallengeSerializer(
        required=False,
        help_text="A when_unsure tenant's session whose selfie scored within its band: the "
        "head-turn challenge now decides the verdict (quality calls, as a head_turn session's; "
        "the first starts it).",
    )


class SessionStateSerializer(Body):
    session_id = serializers.UUIDField()
    state = serializers.ChoiceField(["open", "processing", "done", "expired"])
    expires_at = serializers.DateTimeField()
    capture = serializers.ChoiceField(
        choices=CAPTURE_KINDS, allow_null=True, help_text="Once done (or its selfie held)."
    )
    frames = serializers.IntegerField(help_text="Frames fused into the verdict.")
    liveness_result = LivenessResultSerializer(allow_null=True)
    message = serializers.ChoiceField(
        choices=["Success"], required=False, help_text="Present once done."
    )
    refused = GateFailureSerializer(
        allow_null=True, help_text="The gate that refused the last selfie, while open."
    )
    challenge = serializers.ChoiceField(
        choices=["not_required", "pending", "passed", "failed"],
        help_text="The head-turn challenge: not_required unless the tenant's challenge is "
        "head_turn, or when_unsure and the selfie's score within its band; head_turn: a verdict "
        "exists only once it passed; when_unsure: passed gives is_live 1, failed with no try "
        "left is_live 0, both with the selfie's own score.",
    )
    challenge_code = serializers.ChoiceField(
        choices=CHALLENGE_CODES, required=False, help_text="Why it failed (failed only)."
    )
    challenge_tries_left = serializers.IntegerField(
        required=False,
        help_text="Challenges this session may still start (CAPTURE_CHALLENGE_TRIES in all; "
        "failed only): 0, the session cannot pass, start a new one.",
    )


class QualityRefusedSerializer(Body):
    error = serializers.CharField()
    code = serializers.ChoiceField(choices=QUALITY_REFUSALS)


class RestartRefusedSerializer(Body):
    error = serializers.CharField()
    code = serializers.ChoiceField(choices=RESTART_REFUSALS)


class SelfieRefusedSerializer(Body):
    error = serializers.CharField()
    code = serializers.ChoiceField(choices=SELFIE_REFUSALS)
    reason = serializers.ChoiceField(
        choices=CHALLENGE_CODES, required=False, help_text="Why it failed (challenge_failed)."
    )


class TokenErrorSerializer(Body):
    error = serializers.CharField()
    code = serializers.ChoiceField(choices=TOKEN_CODES)


class ConflictSerializer(Body):
    error = serializers.CharField()
    state = serializers.ChoiceField(choices=["done", "processing"])


class CallsSpentSerializer(Body):
    """429: the session has made its SESSION_CALL_BUDGET token calls."""

    error = serializers.CharField()
    code = serializers.ChoiceField(choices=["session_calls_spent"])
