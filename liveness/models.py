"""One small row per completed check: no image, no hash_id."""

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import NotSupportedError, connection, connections, models, router, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Tenant

# The longest retention prune_checks and prune_sessions take (--days, LIVENESS_RETENTION_DAYS):
# a century. Beyond some 700,000 days the cutoff is no date at all (OverflowError).
MAX_RETENTION_DAYS = 36_500


class CheckQuerySet(models.QuerySet["LivenessCheck"]):
    """Check records, deleted with the rows that copy them (an erasure request, GDPR Art. 17,
    must reach every copy of a selfie's outcome)."""

    def copies(self) -> list[models.QuerySet[Any]]:
        """The rows that copy these records: every row with a key to a check record (a
        capture session's verdict, an Idempotency-Key's stored answer), each model's as one
        query whose records are a subquery, none loaded."""
        records = self.values("pk")
        return [
            relation.related_model._base_manager.using(self.db).filter(
                **{f"{relation.field.name}__in": records}
            )
            for relation in copying_relations()
        ]

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete the records and their copies, in one transaction: one statement on
        PostgreSQL (``_at_once``), one DELETE per table on SQLite (``_with_copies``). None is
        loaded (a cascade loaded every record, 100,000 on a "Select all")."""
        db = router.db_for_write(self.model, **getattr(self, "_hints", {}))  # as delete() writes
        if connections[db].vendor == "postgresql":
            _deletable(self)
            return _at_once(self.using(db))
        return _with_copies(self, super().delete)


def copying_relations() -> list[models.ForeignObjectRel]:
    """The keys of other models to a check record. Each such row copies its record (a model
    of a higher layer, which this one does not name), so each must go with it, and each key is
    DO_NOTHING: any other would have Django's deletion load every record it deletes."""
    return [
        relation
        for relation in LivenessCheck._meta.get_fields(include_hidden=True)
        if isinstance(relation, models.ForeignObjectRel) and not relation.many_to_many
    ]


Deletion = tuple[int, dict[str, int]]  # what ``delete()`` answers: rows, rows per model label


def _with_copies(records: CheckQuerySet, delete: Callable[[], Deletion]) -> Deletion:
    """``delete()`` (of ``records``) after the rows copying ``records``, in one transaction,
    counted as one deletion. SQLite only: its transactions begin IMMEDIATE (settings), so this
    one holds the write lock from its first DELETE, and no check and copy can be committed
    between the two statements (``_at_once`` says what PostgreSQL does there)."""
    with transaction.atomic(using=records.db):
        copied = [rows.delete() for rows in records.copies()]
        deleted = delete()
    return _summed([*copied, deleted])


def _deletable(records: CheckQuerySet) -> None:
    """What ``QuerySet.delete`` refuses, refused alike."""
    if records.query.combinator:
        raise NotSupportedError(
            f"Calling QuerySet.delete() after {records.query.combinator}() is not supported."
        )
    if records.query.is_sliced:
        raise TypeError("Cannot use 'limit' or 'offset' with delete().")
    if records.query.distinct_fields:
        raise TypeError("Cannot call delete() after .distinct(*fields).")
    if getattr(records, "_fields", None) is not None:
        raise TypeError("Cannot call delete() after .values() or .values_list()")


def _at_once(records: CheckQuerySet) -> Deletion:
    """PostgreSQL: the records and their copies deleted by one statement, each copy by the ids
    the records' DELETE returned, all of them read in its one snapshot. As two statements
    (copies, then records), each READ COMMITTED in its own snapshot, a check and its stored
    answer committed between them were seen by the second alone: the record deleted, the
    answer left and still replayed (3 of 250 keyed requests racing 25 deletions of their
    tenant's records). A check and its copies are committed together (liveness.checks.record),
    so this snapshot holds a record's copies whenever it holds the record."""
    connection_ = connections[records.db]
    quote = connection_.ops.quote_name
    pk = quote(str(LivenessCheck._meta.pk.column))
    chosen_rows = records.order_by().values("pk")
    chosen_rows.query.select_for_update = False  # as QuerySet.delete clears it
    try:
        chosen, params = chosen_rows.query.get_compiler(records.db).as_sql()
    except EmptyResultSet:  # pk__in=[], none(): no record to delete
        return 0, {}
    steps = [
        f"gone AS (DELETE FROM {quote(LivenessCheck._meta.db_table)} "
        f"WHERE {pk} IN ({chosen}) RETURNING {pk})"
    ]
    labels = [LivenessCheck._meta.label]
    for n, relation in enumerate(copying_relations()):
        table = quote(relation.related_model._meta.db_table)
        column = quote(str(relation.field.column))
        steps.append(
            f"copy{n} AS (DELETE FROM {table} WHERE {column} IN (SELECT {pk} FROM gone) "
            "RETURNING 1)"
        )
        labels.append(relation.related_model._meta.label)
    counted = ", ".join(f"(SELECT count(*) FROM {step.split()[0]})" for step in steps)
    with transaction.atomic(using=records.db), connection_.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(steps)} SELECT {counted}", params)
        counts = cursor.fetchone()
    records._result_cache = None
    return _summed([(n, {label: n}) for label, n in zip(labels, counts, strict=True) if n])


def _summed(deletions: list[Deletion]) -> Deletion:
    """Several ``delete()`` answers as one: the rows in all, and per model label."""
    per_model: dict[str, int] = {}
    for _, counts in deletions:
        for label, n in counts.items():
            per_model[label] = per_model.get(label, 0) + n
    return sum(n for n, _ in deletions), per_model


class LivenessCheck(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="checks")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    is_live = models.BooleanField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField()
    request_id = models.CharField(max_length=128, blank=True)
    capture = models.CharField(
        max_length=8, blank=True, help_text="frame or crop: what the engine judged (201 only)."
    )
    # While the tenant has a shadow candidate: the verdict it would have given (same logit).
    shadow_is_live = models.BooleanField(null=True, blank=True)
    shadow_score = models.FloatField(null=True, blank=True)
    refused_code = models.CharField(
        max_length=64, blank=True, help_text="Set when the engine refused the image (HTTP 422)."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A tenant's usage page counts its days as a range of this index: on tenant_id
            # alone SQLite read every record of the tenant (2 days of a 247,000-record
            # tenant: 0.10 s, 0.01 s on this one).
            models.Index(fields=["tenant", "created_at"], name="liveness_check_tenant_time"),
        ]

    objects = CheckQuerySet.as_manager()

    def __str__(self) -> str:
        outcome = self.refused_code or ("live" if self.is_live else "spoof")
        return f"{self.tenant} {self.created_at:%Y-%m-%d %H:%M:%S} {outcome}"

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """The record and its copies (:meth:`CheckQuerySet.delete`): the admin's delete page."""
        db = using or router.db_for_write(LivenessCheck, instance=self)
        this = LivenessCheck.objects.using(db).filter(pk=self.pk)
        if connections[db].vendor == "postgresql":
            if self.pk is None:  # as Model.delete refuses it
                raise ValueError(
                    f"{self._meta.object_name} object can't be deleted because its "
                    f"{self._meta.pk.attname} attribute is set to None."
                )
            deleted = _at_once(this)
            self.pk = None  # as Model.delete leaves it
            return deleted
        return _with_copies(this, functools.partial(super().delete, db, keep_parents))

    @classmethod
    def insert(cls, **values: Any) -> int:
        """INSERT one row, as ``objects.create(**values)`` would (field defaults, created_at
        now, values prepared by each field for this database), without the model instance
        and the ORM's per-call query building (0.3 ms per request, bench.hotpath). No
        signals are sent: nothing listens to this model's. Returns the row's id."""
        values["created_at"] = timezone.now()
        fields = _insert_fields()
        unknown = set(values) - {f.attname for f in fields} - {f.name for f in fields}
        if unknown:
            raise TypeError(f"LivenessCheck has no field {sorted(unknown)}")
        params = []
        for field in fields:
            value = values.get(field.attname, values.get(field.name, field.get_default()))
            if hasattr(value, "pk"):  # tenant=Tenant instance
                value = value.pk
            params.append(field.get_db_prep_save(value, connection))
        # As Model.save does: a failed INSERT marks the enclosing atomic block for rollback.
        with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
            cursor.execute(_insert_sql(), params)
            if connection.features.can_return_columns_from_insert:
                return int(cursor.fetchone()[0])
            return int(cursor.lastrowid)


def created_on(first: date, last: date) -> Q:
    """The records created on the UTC days ``first`` to ``last`` included, as a range of
    ``created_at`` that its indexes serve. ``created_at__date`` is a Python function called on
    every row on SQLite, no index: today's figures on the admin index took 3.6 s over 247,000
    records (90 days of 2,800 a day), and the live checks of the same worker waited."""
    since = Q(created_at__gte=datetime.combine(first, time(), tzinfo=UTC))
    if last == date.max:  # the usage page's ?to=9999-12-31: no midnight after it
        return since
    return since & Q(created_at__lt=datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC))


def _insert_fields() -> list[models.Field[Any, Any]]:
    return [f for f in LivenessCheck._meta.concrete_fields if not f.primary_key]


# Built once per process (one database alias), not per insert: 120 -> 71 us of CPU per
# insert (interleaved micro-benchmark, 20 rounds).
@functools.cache
def _insert_sql() -> str:
    fields, quote = _insert_fields(), connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(LivenessCheck._meta.db_table)} ({columns}) VALUES ({marks})"
    if connection.features.can_return_columns_from_insert:
        # As the ORM writes it. Without RETURNING, an INSERT that failed on a full SQLite
        # file (SQLITE_FULL) left the enclosing savepoint impossible to roll back, so the
        # connection stayed broken (tests/liveness/test_status_check_disk_full.py); with it,
        # as objects.create.
        sql += f" RETURNING {quote(str(LivenessCheck._meta.pk.column))}"
    return sql


class IdempotentAnswer(models.Model):
    """The answer /liveness gave a tenant's ``Idempotency-Key`` (liveness.idempotency): no
    key, no body, no image, only their SHA-256 digests and the JSON already sent (a verdict's
    score or a quality gate's code). ``status`` is null while the first request is judged."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key_digest = models.CharField(max_length=64)
    body_digest = models.CharField(max_length=64)
    claim = models.CharField(max_length=32, help_text="The request judging it (uuid4 hex).")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    answer = models.TextField(blank=True, help_text="The JSON body as sent.")
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # The check record the answer is of (its score, or its gate's code), stored with it:
    # deleting the record deletes the answer (CheckQuerySet.delete). DO_NOTHING and no
    # constraint, as a capture session's key to its record (capture.models).
    liveness_check = models.ForeignKey(
        LivenessCheck,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="idempotent_answers",
    )

    class Meta:
        verbose_name = "Idempotency-Key answer"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key_digest"], name="liveness_idempotency_key_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.key_digest[:12]} {self.status or 'pending'}"
