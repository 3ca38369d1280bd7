"""Fixed-window hit counters shared by every worker through the database."""

from django.db import models

# A login account's counters are kept under its username's HMAC (guard.login.account_subject),
# 64 hex digits, shown by this many: enough to tell accounts apart, nothing to test a guess on.
ACCOUNT_SCOPE = "login-account"
ACCOUNT_SHOWN = 8


class Counter(models.Model):
    """Hits of one subject (a client IP, a tenant, a login account's HMAC) in one window of one
    scope."""

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
        return f"{self.scope}:{self.subject_shown}@{self.bucket} = {self.hits}"

    @property
    def subject_shown(self) -> str:
        """The subject as pages show it: a login account's HMAC by its first ACCOUNT_SHOWN
        digits (the overflow row's "*" whole)."""
        if self.scope == ACCOUNT_SCOPE and len(self.subject) > ACCOUNT_SHOWN:
            return f"account {self.subject[:ACCOUNT_SHOWN]}…"
        return self.subject


class Refusal(models.Model):
    """/liveness requests answered 401 or 429, per UTC day: per tenant where the hash_id names
    one (``tenant_id``; 0 when none), else per client address bucket (``client``, a /24 or
    /64 network). Written only on those answers, never on a 201; no hash_id, no image."""

    day = models.DateField()
    code = models.CharField(max_length=32, help_text="The rejection: invalid_credentials, ...")
    status = models.PositiveSmallIntegerField()
    tenant_id = models.PositiveBigIntegerField(default=0, help_text="0: no tenant known.")
    client = models.CharField(max_length=64, blank=True, help_text="Address bucket (no tenant).")
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "code", "tenant_id", "client"], name="guard_refusal_unique"
            )
        ]
        indexes = [models.Index(fields=["tenant_id", "day"], name="guard_refusal_tenant_day")]

    def __str__(self) -> str:
        who = f"tenant {self.tenant_id}" if self.tenant_id else self.client
        return f"{self.day} {self.status} {self.code} {who} = {self.hits}"
