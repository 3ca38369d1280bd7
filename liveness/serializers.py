"""Serializers that describe the contract for the OpenAPI schema (the view parses by hand)."""

from rest_framework import serializers

from ml.quality import REFUSALS


class LivenessRequestSerializer(serializers.Serializer):
    hash_id = serializers.CharField(help_text="Your credential, as issued by the operator.")
    selfie_image = serializers.CharField(
        help_text="PNG or JPEG as base64, optionally prefixed with `data:image/...;base64,`."
    )


class LivenessResultSerializer(serializers.Serializer):
    is_live = serializers.IntegerField(min_value=0, max_value=1)
    liveness_score = serializers.FloatField(
        min_value=0.0, max_value=1.0, help_text="Probability that the face is live."
    )


class LivenessResponseSerializer(serializers.Serializer):
    liveness_result = LivenessResultSerializer()
    message = serializers.CharField(default="Success")


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


class RefusalSerializer(ErrorSerializer):
    """A quality gate's 422: a fixed sentence per code (README, "Quality gates")."""

    code = serializers.ChoiceField(
        choices=list(REFUSALS), help_text="The gate that refused the face; branch on this."
    )
