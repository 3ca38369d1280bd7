"""One small row per completed check: no image, no hash_id."""

from django.db import models

from accounts.models import Tenant


class LivenessCheck(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="checks")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    is_live = models.BooleanField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField()
    request_id = models.CharField(max_length=128, blank=True)
    refused_code = models.CharField(
        max_length=64, blank=True, help_text="Set when the engine refused the image (HTTP 422)."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        outcome = self.refused_code or ("live" if self.is_live else "spoof")
        return f"{self.tenant} {self.created_at:%Y-%m-%d %H:%M:%S} {outcome}"
