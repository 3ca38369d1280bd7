"""Calibration and evaluation in the admin: the tenant admin extended with its calibration
(status, revert, calibration from an uploaded zip run as a job by the task worker, a shadow
candidate with the verdicts it would flip, promoted or discarded), the calibrations and the
evaluations, read only (an evaluation deleted by a user with ``delete_evaluation``), with their
figures and their DET curve and score histograms, drawn in memory (data URIs; no file is
written; its HTML fragments are in calibration.pages). Reverting,
uploading, promoting or discarding needs ``change_tenant``; a viewer gets 403. The tenant
page's calibration blocks read calibrations and check records: each is shown only to a user
who may view those (``view_calibration``, ``view_livenesscheck``), and the upload page and the
shadow's buttons need ``view_calibration`` too."""

import logging
from typing import Any, ClassVar

import numpy as np
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django_tasks_db.models import DBTaskResult

from accounts import audit
from accounts.admin import TENANT_FIELDS, TenantAdmin, fields_after, tenant_said
from accounts.models import Tenant
from calibration import progress
from calibration.calibrate import CalibrationError, not_applied_said, zip_members
from calibration.forms import CalibrationUploadForm
from calibration.jobs import HandoffError, JobState, describe_job, start_calibration
from calibration.models import (
    Calibration,
    Evaluation,
    NoShadow,
    discard_shadow,
    promote_shadow,
    revert_calibration,
)
from calibration.pages import (
    describe,
    describe_shadow,
    figures_table,
    intervals_table,
    maps_table,
    number,
    plot_figures,
    sentences,
    shadow_flips,
    shadow_warning,
)
from guard.adminperms import TENANTS_OF_ITS_ROWS, PermittedActionsAdmin
from guard.formatting import decimal, with_exact
from guard.sessions import passive
from guard.viewing import user_may_view
from liveness.models import LivenessCheck
from ml.evaluate import (
    HELD_OUT,
    SOURCE_COLUMNS,
    amount,
    counted_on,
    figure_label,
    in_sample_note,
    interval_method,
    scope_title,
    shown_interval,
    shown_value,
)

logger = logging.getLogger(__name__)

JOBS_SHOWN = 5


class CandidateGone(Exception):
    """The shadow candidate's record is gone (promote_shadow found none): raised, not
    answered, so that audit.recorded's None says only that nothing was written."""


def may_view(request: HttpRequest, model: Any) -> bool:
    """Whether ``request``'s user may read ``model``'s rows (view or change, as its list)."""
    return user_may_view(request.user, model)


def reads_calibrations(request: HttpRequest) -> bool:
    return may_view(request, Calibration)


def reads_checks(request: HttpRequest) -> bool:
    return may_view(request, LivenessCheck)


def shown_jobs(tenant: Tenant) -> list[JobState]:
    """The tenant's last jobs, newest first, as its upload page shows them."""
    return [describe_job(job) for job in tenant.calibration_jobs.all()[:JOBS_SHOWN]]


CALIBRATION_BLOCKS = ("calibration_status", "shadow_status", "shadow_buttons")


def shadow_chosen(tenant: Tenant, value: str) -> tuple[str, int] | str:
    """A shadow button's ``value``, "promote:ID" or "discard:ID" (ID the candidate its page
    showed): the choice and the candidate, or why it is refused, nothing changed (no id, or
    not the candidate of ``tenant`` as read for the request; promote_shadow and
    discard_shadow check again under its lock)."""
    choice, _, seen = value.partition(":")
    if choice not in ("promote", "discard") or not seen.isascii() or not seen.isdigit():
        return (
            "Choose to promote or to discard the candidate with its button on the tenant's "
            "page (the request did not name the candidate the page showed); nothing was changed."
        )
    current = (tenant.shadow_calibration or {}).get("id")
    if current is None:
        return f"{tenant_said(tenant.name)} has no shadow candidate."
    # Compared as digits, never int()-ed: 5,000 of them were a ValueError past Python's
    # 4,300-digit limit (a 500); no id has more than 19.
    if seen.lstrip("0") != str(current).lstrip("0"):
        shown = seen if len(seen) <= 20 else f"{seen[:20]}..."
        return (
            f"{tenant_said(tenant.name)}: candidate #{shown}, which the page showed, is no "
            f"longer in shadow; candidate #{current} is. Nothing was changed: review it and "
            "choose again."
        )
    return choice, int(current)


class CalibratedTenantAdmin(TenantAdmin):
    """TenantAdmin plus the tenant's calibration: its status (with a link to the upload page),
    a "calibrated" column, the revert action and the upload page."""

    fields = fields_after(
        TENANT_FIELDS, "crop_policy", "calibration_status", "shadow_status", "shadow_buttons"
    )
    list_display = fields_after(TenantAdmin.list_display, "profile_and_crops", "calibrated")
    readonly_fields = fields_after(
        TenantAdmin.readonly_fields,
        "requests_used",
        "calibration_status",
        "calibration_viewed",
        "shadow_status",
        "shadow_viewed",
        "shadow_buttons",
    )
    actions = [*TenantAdmin.actions, "revert_to_uncalibrated"]

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = super().get_list_display(request)
        return shown if reads_calibrations(request) else [f for f in shown if f != "calibrated"]

    @admin.display(description="calibrated", boolean=True)
    def calibrated(self, tenant: Tenant) -> bool:
        return tenant.maps() is not None

    def calibration_summary(self, tenant: Tenant) -> str:
        if tenant.pk is None:
            return "-"
        active = (tenant.calibration or {}).get("id")
        found = Calibration.objects.filter(pk=active, tenant=tenant).first() if active else None
        if found is None:
            return mark_safe("Uncalibrated (the shipped map of each capture kind).")
        note = ""
        if why := tenant.not_applied(tenant.calibration):
            note = f" {not_applied_said(why)}, or revert."
        return format_html("{}{}", describe(found), note)

    @admin.display(description="calibration")
    def calibration_status(self, tenant: Tenant) -> str:
        summary = self.calibration_summary(tenant)
        if tenant.pk is None:
            return summary
        link = format_html(
            '<a id="calibrate-link" href="{}">Calibrate from a zip of labelled captures</a>',
            reverse("admin:accounts_tenant_calibrate", args=[tenant.pk]),
        )
        return format_html("{} {}", summary, link)

    @admin.display(description="calibration")
    def calibration_viewed(self, tenant: Tenant) -> str:
        """The calibration as a viewer sees it: no link to an upload they may not make."""
        return self.calibration_summary(tenant)

    @admin.display(description="shadow calibration")
    def shadow_status(self, tenant: Tenant) -> SafeString | str:
        return "-" if tenant.pk is None else describe_shadow(tenant)

    @admin.display(description="shadow calibration")
    def shadow_viewed(self, tenant: Tenant) -> SafeString | str:
        """The shadow candidate as a user who may not view check records sees it: no flips."""
        return "-" if tenant.pk is None else describe_shadow(tenant, with_flips=False)

    @admin.display(description="promote or discard")
    def shadow_buttons(self, tenant: Tenant) -> SafeString | str:
        if tenant.pk is None or not tenant.shadow_calibration:
            return "-"
        # formaction: posts the change form's CSRF token to the shadow view, saving nothing.
        # Each button names the candidate this page shows: the view acts on that one only.
        url = reverse("admin:accounts_tenant_shadow", args=[tenant.pk])
        seen = tenant.shadow_calibration["id"]
        return format_html(
            '<button type="submit" class="button" id="shadow-promote" name="shadow" '
            'value="promote:{}" formaction="{}" formnovalidate>Promote the candidate</button> '
            '<button type="submit" class="button" id="shadow-discard" name="shadow" '
            'value="discard:{}" formaction="{}" formnovalidate>Discard the candidate</button>',
            seen,
            url,
            seen,
            url,
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Each calibration block for a user who may read its source: the calibrations
        (``view_calibration``), the flips counted from the checks (``view_livenesscheck``);
        the upload link and the shadow's buttons also need ``change_tenant``."""
        fields = super().get_fields(request, obj)
        if not reads_calibrations(request):
            return [f for f in fields if f not in CALIBRATION_BLOCKS]
        viewed: dict[Any, Any] = {}
        if not reads_checks(request):
            viewed["shadow_status"] = "shadow_viewed"
        if not self.has_change_permission(request, obj):
            viewed["calibration_status"] = "calibration_viewed"
            viewed["shadow_buttons"] = None
        shown = [viewed.get(f, f) for f in fields]
        return [f for f in shown if f is not None]

    def may_calibrate(self, request: HttpRequest, tenant: Tenant | None = None) -> bool:
        """Uploading, promoting or discarding: ``change_tenant``, and ``view_calibration`` to
        see what it sets (the upload page and the messages show the calibration)."""
        return self.has_change_permission(request, tenant) and reads_calibrations(request)

    def tenant_to_calibrate(self, request: HttpRequest, tenant_id: int) -> Tenant:
        """The tenant of the upload page or the shadow's buttons: 403 before saying whether it
        exists (looked up first, a 404 for a missing id and a 403 for an existing one would
        tell which ids exist)."""
        if not self.may_calibrate(request):
            raise PermissionDenied
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.may_calibrate(request, tenant):
            raise PermissionDenied
        return tenant

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Deleting a tenant takes its calibrations with it, though they cannot be deleted on
        their own."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {Calibration._meta.verbose_name}, protected

    def get_urls(self) -> list[URLPattern]:
        calibrate = path(
            "<int:tenant_id>/calibrate/",
            self.admin_site.admin_view(self.calibrate_view),
            name="accounts_tenant_calibrate",
        )
        jobs = path(
            "<int:tenant_id>/calibrate/jobs/",
            # passive: the page's own poll, which does not keep an idle operator signed in
            self.admin_site.admin_view(passive(self.calibrate_jobs_view)),
            name="accounts_tenant_calibrate_jobs",
        )
        shadow = path(
            "<int:tenant_id>/shadow/",
            self.admin_site.admin_view(self.shadow_view),
            name="accounts_tenant_shadow",
        )
        return [calibrate, jobs, shadow, *super().get_urls()]

    def shadow_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """Promote the shadow candidate to the active calibration, or discard it (POST, with
        ``shadow`` = promote:ID or discard:ID, ID the candidate the page showed: another one,
        set by an upload job since, is refused, never switched unseen)."""
        tenant = self.tenant_to_calibrate(request, tenant_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        back = HttpResponseRedirect(reverse("admin:accounts_tenant_change", args=[tenant.pk]))
        chosen = shadow_chosen(tenant, request.POST.get("shadow", ""))
        if isinstance(chosen, str):
            messages.warning(request, chosen)
            return back
        choice, seen = chosen  # "promote" or "discard"
        flips = shadow_flips(tenant)
        counts = (
            f"{flips.checks} checks in shadow: {flips.live_to_spoof} live → spoof, "
            f"{flips.spoof_to_live} spoof → live"
        )
        done = "promoted" if choice == "promote" else "discarded"
        try:
            # the switch and its history entry, both or neither: recorded after the switch's
            # own transaction, a process killed (or a history insert failing) in between left
            # the candidate promoted or discarded with no entry
            text = audit.recorded(
                request,
                lambda: self.switch_and_record(request, tenant, choice, seen, counts),
                f"{tenant_said(tenant.name)}: candidate #{seen} was not {done}.",
                logger,
                "%s: switching shadow candidate #%s failed",
                tenant.name,
                seen,
            )
        except NoShadow:  # another switch, or an upload job's candidate, came first
            messages.warning(
                request, f"{tenant_said(tenant.name)}: candidate #{seen} is no longer in shadow."
            )
            return back
        except CandidateGone:
            messages.error(request, "The candidate's record is gone; discard it instead.")
            return back
        if text is None:  # neither written, said on the page
            return back
        if not reads_checks(request):  # the counts come from the check records
            text = text.replace(f" ({counts})", "")
        messages.success(request, f"{tenant_said(tenant.name)}: {text}")
        return back

    @classmethod
    def switch_and_record(
        cls, request: HttpRequest, tenant: Tenant, choice: str, seen: int, counts: str
    ) -> str:
        """switch_shadow with its history entry (inside audit.recorded's transaction): the
        entry's text; CandidateGone when the candidate's record is gone, nothing switched."""
        text = cls.switch_shadow(tenant, choice, seen, counts)
        if text is None:
            raise CandidateGone
        audit.record(tenant, text, request.user)
        return text

    @staticmethod
    def switch_shadow(tenant: Tenant, choice: str, seen: int, counts: str) -> str | None:
        """Promote or discard ``tenant``'s candidate ``seen``: the history's text, None when the
        candidate's record is gone (NoShadow when it is no longer the candidate)."""
        if choice == "promote":
            promoted = promote_shadow(tenant, seen)  # reads the tenant again under its lock
            if promoted is None:
                return None
            found, before = promoted  # found.over(tenant): over the threshold the tenant had
            after = tenant.threshold
            said = f"{after:.4f} kept" if found.keeps_threshold() else f"{before:.4f} → {after:.4f}"
            return f"Promoted shadow candidate #{found.pk} ({counts}): threshold {said}."
        discarded = discard_shadow(tenant, seen)
        return f"Discarded shadow candidate #{discarded.pk if discarded else '?'} ({counts})."

    def calibrate_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """Upload a zip of live/ and spoof/ captures: calibrated by the task worker, in memory,
        never saved; the page lists the tenant's last jobs."""
        tenant = self.tenant_to_calibrate(request, tenant_id)
        form = CalibrationUploadForm()
        if request.method == "POST":
            form = CalibrationUploadForm(request.POST, request.FILES)
            if getattr(request, "upload_too_large", False):
                form.add_error("archive", "The zip is larger than the upload limit.")
            elif form.is_valid():
                done = self._calibrate_from(request, tenant, form)
                if done is not None:
                    return done
        jobs = shown_jobs(tenant)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": f"Calibrate {tenant.name}",
            "form": form,
            "status": self.calibration_status(tenant),
            # the flips are counted from the check records
            "shadow_warning": shadow_warning(tenant, with_flips=reads_checks(request)),
            # followed by the page's script while one is pending (calibration/jobs.js)
            **progress.jobs_json(jobs, tenant.threshold),
            "poll_url": reverse("admin:accounts_tenant_calibrate_jobs", args=[tenant.pk]),
            "poll_every": progress.POLL_EVERY_S,
        }
        return TemplateResponse(request, "admin/calibration/tenant_calibrate.html", context)

    def calibrate_jobs_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """The upload page's jobs as its script reads them (JSON): the page's own permissions
        (403 otherwise, before saying whether the tenant exists), this tenant's jobs only."""
        tenant = self.tenant_to_calibrate(request, tenant_id)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return JsonResponse(progress.jobs_json(shown_jobs(tenant), tenant.threshold))

    def _calibrate_from(
        self, request: HttpRequest, tenant: Tenant, form: CalibrationUploadForm
    ) -> HttpResponse | None:
        """Check the zip's directory (cheap: no member is read), hand it to the task worker and
        queue its job; the page then shows the job's progress and result."""
        target = form.cleaned_data.get("target_apcer")
        upload = form.cleaned_data["archive"]
        try:
            data = upload.read()
            members = zip_members(data)
            job = start_calibration(
                tenant.pk,
                data,
                len(members),
                target,
                request.user,
                bool(form.cleaned_data.get("equal_error")),
                form.cleaned_data.get("shadow_days"),
            )
        except (CalibrationError, HandoffError) as exc:
            form.add_error("archive", str(exc))
            return None
        finally:
            upload.close()
        messages.info(
            request,
            f"Calibration job #{job.pk} queued ({amount(job.images, 'image')}); this page shows "
            "its progress and result.",
        )
        url = reverse("admin:accounts_tenant_calibrate", args=[tenant.pk])
        return HttpResponseRedirect(url, status=303)

    def has_calibrate_permission(self, request: HttpRequest) -> bool:
        return self.may_calibrate(request)

    @admin.action(
        description="Revert to uncalibrated (restore the earlier threshold)",
        permissions=["calibrate"],
    )
    def revert_to_uncalibrated(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            try:
                reverted = revert_and_record(request, tenant)
            except NotCalibrated:
                said = f"{tenant_said(tenant.name)}: not calibrated, nothing reverted."
                self.message_user(request, said, messages.WARNING)
                continue
            if reverted is not None:  # None: neither written, said on the page
                said = (
                    f"{tenant_said(tenant.name)}: uncalibrated, threshold {tenant.threshold:.4f}."
                )
                self.message_user(request, said, messages.SUCCESS)


class NotCalibrated(Exception):
    """Raised by revert_and_record for a tenant with no calibration to revert (nothing
    written): audit.recorded's None says that neither was written."""


def revert_and_record(request: HttpRequest, tenant: Tenant) -> float | None:
    """Revert ``tenant``'s calibration with its history entry, both or neither (as shadow_view's
    switch; audit.recorded): the threshold it had; None when neither was written (said on the
    page); NotCalibrated when it was not calibrated."""

    def reverted() -> float:
        before = revert_calibration(tenant)  # read under the tenant's lock
        if before is None:
            raise NotCalibrated
        audit.record(
            tenant,
            f"Reverted to uncalibrated: threshold {before:.4f} → {tenant.threshold:.4f}.",
            request.user,
        )
        return before

    return audit.recorded(
        request,
        reverted,
        f"{tenant_said(tenant.name)}: not reverted.",
        logger,
        "%s: reverting the calibration failed",
        tenant.name,
    )


@admin.register(Calibration)
class CalibrationAdmin(PermittedActionsAdmin[Calibration]):
    list_display = (
        "created_at",
        "tenant",
        "profile",
        "created_by",
        "origin",
        "bona_fide",
        "attacks",
        "threshold_4",
        "reverted_at",
    )
    list_filter = (TENANTS_OF_ITS_ROWS, "profile")
    # params and figures are shown formatted (maps_display, figures_display), not as JSON
    # thresholds to 4 places with the stored value in the tooltip (threshold_shown, ...)
    fields: ClassVar[tuple[str, ...]] = (
        *(
            f"{f.name}_shown" if f.name in ("threshold", "previous_threshold") else f.name
            for f in Calibration._meta.fields
            if f.name not in ("id", "params", "figures")
        ),
        "changes",
        "maps_display",
        "figures_display",
        "plots",
    )
    readonly_fields: ClassVar[tuple[str, ...]] = fields

    @admin.display(description="what it changes")
    def changes(self, calibration: Calibration) -> SafeString | str:
        if not (calibration.figures or {}).get("sentences"):
            return "- (stored before calibrations said what they changed)"
        return sentences(calibration)

    @admin.display(description="maps per capture kind")
    def maps_display(self, calibration: Calibration) -> SafeString:
        return maps_table(calibration)

    @admin.display(description="figures (95 % CI)")
    def figures_display(self, calibration: Calibration) -> str:
        return figures_table(calibration)

    @admin.display(description="plots (held-out calibrated scores of the sample)")
    def plots(self, calibration: Calibration) -> SafeString | str:
        scores = (calibration.figures or {}).get("scores")
        if (calibration.figures or {}).get("version") != 2:
            return "- (stored before calibrations kept held-out scores)"
        if not scores:
            return "- (no held-out scores: the sample was too small)"
        live = np.asarray(scores["live"], dtype=float)
        spoof = np.asarray(scores["spoof"], dtype=float)
        return plot_figures(live, spoof, calibration.threshold)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # calibrations come from `manage.py calibrate` or the tenant's page

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the history of a tenant's thresholds

    @admin.display(description="threshold", ordering="threshold")
    def threshold_4(self, calibration: Calibration) -> str:
        return f"{calibration.threshold:.4f}"

    @admin.display(description="threshold")
    def threshold_shown(self, calibration: Calibration) -> SafeString:
        return with_exact(decimal(calibration.threshold), calibration.threshold)

    @admin.display(description="previous threshold")
    def previous_threshold_shown(self, calibration: Calibration) -> SafeString:
        return with_exact(decimal(calibration.previous_threshold), calibration.previous_threshold)


def _rounded(value: float | None, places: int = 4) -> str:
    return number(value, f".{places}f")


def _cell(row: dict[str, Any]) -> dict[str, str]:
    return {"value": shown_value(row), "interval": shown_interval(row)}


def _fitted(fitted: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "name": row["name"],
            "threshold": _rounded(row["threshold"]),
            "folds": f"{row['folds']} of {fitted['sources']}",
            "figures": [_cell(r) for r in row["figures"]],
        }
        for row in fitted["rows"]
    ]
    return {"note": fitted["note"], "rows": rows}


def _scope(scope: dict[str, Any], unit: str) -> dict[str, Any]:
    figures = [
        {
            "name": row["name"],
            "label": figure_label(row["name"]),
            "counted": counted_on(row, unit),
            **_cell(row),
        }
        for row in scope["figures"]
    ]
    return {
        "id": scope["name"],
        "title": scope_title(scope, unit),
        "figures": figures,
        "remarks": scope.get("remarks") or [],
        "fitted": _fitted(scope["fitted"]),
    }


def _source(scope: dict[str, Any]) -> dict[str, Any]:
    found = {row["name"]: row for row in scope["figures"]}
    cells = [_cell(found[name]) for name in SOURCE_COLUMNS]
    for cell, name in zip(cells, SOURCE_COLUMNS, strict=True):
        if found[name]["note"]:  # one source: the reason is the same in every cell
            cell["interval"] = ""
    return {
        "name": scope["name"],
        "in_sample": bool(scope.get("in_sample")),
        "bona_fide": scope["bona_fide"],
        "attacks": scope["attacks"],
        "cells": cells,
    }


def iso_context(report: dict[str, Any]) -> dict[str, Any] | None:
    """The stored ISO/IEC 30107-3 report as the rows of the evaluation page's tables, every
    number formatted (ml.evaluate's own formatting: rates as percentages); None for a report
    stored before there was one."""
    iso = report.get("iso")
    if not iso:
        return None
    unit = iso["unit"]
    return {
        "standard": iso["standard"],
        "threshold": _rounded(iso["threshold"]),
        "species": ", ".join(iso["species"]) or "none",
        "method": interval_method(iso),
        "in_sample": in_sample_note(iso),
        "scopes": [_scope(s, unit) for s in iso["scopes"] if s["kind"] != "source"],
        "sources": [_source(s) for s in iso["scopes"] if s["kind"] == "source"],
        "source_columns": list(SOURCE_COLUMNS.values()),
    }


@admin.register(Evaluation)
class EvaluationAdmin(PermittedActionsAdmin[Evaluation]):
    """An evaluation's page: its ISO/IEC 30107-3 report as tables (evaluation_change_form.html),
    its warnings and plots; a report stored before the ISO report shows its older figures.
    Written by ``manage.py evaluate`` only: never added or edited here (a POST to its page is
    refused with 403); deleted, row by row or from the list, by a user with
    ``delete_evaluation`` (Django's own check: ModelAdmin's ``has_delete_permission``)."""

    change_form_template = "admin/calibration/evaluation_change_form.html"
    list_display = (
        "created_at",
        "tenant",
        "profile",
        "crop_policy",
        "scored_by",
        "bona_fide",
        "attacks",
        "auc_3",
        "threshold_4",
    )
    list_filter = (TENANTS_OF_ITS_ROWS, "profile", "crop_policy", "calibrated")
    SUMMARY = (
        "created_at",
        "tenant",
        "profile",
        "crop_policy",
        "scored_by",
        "threshold_4",
        "bona_fide",
        "attacks",
        "auc_3",
        "warnings",
    )
    LEGACY = ("figures", "operating_points")
    readonly_fields = (*SUMMARY, *LEGACY, "plots")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and "iso" in obj.report:
            return (*self.SUMMARY, "plots")
        return self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # evaluations come from `manage.py evaluate`

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            context["iso"] = iso_context(obj.report)
            context["held_out"] = list(HELD_OUT.values())
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="scores")
    def scored_by(self, evaluation: Evaluation) -> str:
        return evaluation.scored_by()

    @admin.display(description="threshold", ordering="threshold")
    def threshold_4(self, evaluation: Evaluation) -> str:
        return _rounded(evaluation.threshold)

    @admin.display(description="AUC", ordering="auc")
    def auc_3(self, evaluation: Evaluation) -> str:
        return _rounded(evaluation.auc, 3)

    @admin.display(description="warnings")
    def warnings(self, evaluation: Evaluation) -> str:
        found = evaluation.report.get("warnings") or []
        return format_html_join("", "<p>{}</p>", ((w,) for w in found)) if found else "-"

    @admin.display(description="figures at the threshold (95 % CI)")
    def figures(self, evaluation: Evaluation) -> SafeString | str:
        report = evaluation.report
        rows = [("all scored", report["intervals"])] if "intervals" in report else []
        for group in ("by_capture", "by_source"):
            rows += [(name, figs) for name, figs in (report.get(group) or {}).items()]
        return intervals_table(rows, "evaluation-figures") if rows else "-"

    @admin.display(description="BPCER at a target APCER")
    def operating_points(self, evaluation: Evaluation) -> SafeString | str:
        points = evaluation.report.get("BPCER_at_APCER") or {}
        rows = (
            (target, _rounded(p.get("threshold")), _rounded(p.get("BPCER"), 3))
            for target, p in points.items()
        )
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        if not points:
            return "-"
        return format_html(
            '<table class="operating-points"><thead><tr><th>APCER</th><th>threshold</th>'
            "<th>BPCER</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="plots")
    def plots(self, evaluation: Evaluation) -> SafeString:
        live = np.asarray(evaluation.bona_fide_scores(), dtype=float)
        spoof = np.asarray(evaluation.attack_scores(), dtype=float)
        return plot_figures(live, spoof, evaluation.threshold)


# django-tasks-db's own page of raw task rows: jobs are shown, with their permission checks,
# on each tenant's calibration page; the rows themselves are nothing an operator acts on.
admin.site.unregister(DBTaskResult)
