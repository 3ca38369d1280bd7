"""Fixed-window hit counters shared by every worker through the database."""

from django.db import models


class Counter(models.Model):
    """Hits of one subject (a client IP, a tenant) in one window of one scope."""

    scope = models.CharField(max_length=16)
    subject = models.CharField(max_length=64)
    bucket = models.BigIntegerField(help_text="Start of the window, in seconds since the epoch.")
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "subject", "bucket"], name="guard_counter_unique"
            )
        ]
        indexes = [models.Index(fields=["bucket"], name="guard_counter_bucket")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.subject}@{self.bucket} = {self.hits}"
