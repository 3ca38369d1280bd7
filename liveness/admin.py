"""Checks and evaluations, read only. An evaluation's page shows its figures and its DET curve
and score histograms, drawn in memory (data URIs; no file is written)."""

import json
from typing import Any

import numpy as np
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.admin import intervals_table, number, plot_figures
from guard.adminperms import PermittedActionsAdmin
from liveness.models import Evaluation, LivenessCheck


class ReadOnlyAdmin(PermittedActionsAdmin):
    """Records written by the service or its commands: viewed, never added, edited or deleted
    from the admin (a POST to a change page is refused with 403)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LivenessCheck)
class LivenessCheckAdmin(PermittedActionsAdmin):
    list_display = (
        "created_at",
        "tenant",
        "is_live",
        "rounded_score",
        "refused_code",
        "latency_ms",
        "request_id",
    )
    list_filter = ("is_live", "refused_code", "tenant")
    search_fields = ("request_id", "tenant__name")
    date_hierarchy = "created_at"

    @admin.display(description="score", ordering="score")
    def rounded_score(self, check: LivenessCheck) -> str:
        return "-" if check.score is None else f"{check.score:.3f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _rounded(value: float | None, places: int = 4) -> str:
    return number(value, f".{places}f")


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "profile",
        "folder",
        "bona_fide",
        "attacks",
        "auc_3",
        "threshold_4",
    )
    list_filter = ("profile",)
    fields = (
        "created_at",
        "profile",
        "folder",
        "threshold_4",
        "bona_fide",
        "attacks",
        "auc_3",
        "warnings",
        "figures",
        "operating_points",
        "plots",
        "raw_report",
    )
    readonly_fields = fields

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

    @admin.display(description="report (JSON)")
    def raw_report(self, evaluation: Evaluation) -> SafeString:
        text = json.dumps(evaluation.report, indent=1)
        return format_html(
            '<details><summary>{} characters</summary><pre style="max-height:30em;'
            'overflow:auto">{}</pre></details>',
            len(text),
            text,
        )
