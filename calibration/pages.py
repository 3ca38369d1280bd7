"""The HTML fragments of the calibration admin (calibration.admin): a calibration's status, what
it changes, its maps and figures (95 % intervals); the DET curve and score histograms as inline
images; the shadow candidate and the verdicts it would flip. Built with format_html: every value
from a record is escaped."""

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from accounts.models import Tenant
from calibration.calibrate import not_applied_said, refusal_codes
from calibration.models import Calibration, shadow_candidate
from liveness.models import LivenessCheck
from ml import plots
from ml.calibration import maps_of
from ml.evaluate import amount, shown
from ml.profiles import Platt
from ml.tenant_calibration import HTER_WORDS, KIND_WORDS, now_label, same_map

INTERVALS = ("APCER", "BPCER", "HTER", "AUC")
# Figures stored before HTER name it ACER (every attack pooled, not ISO's worst species').
STORED_AS = {"HTER": "ACER"}


def number(value: float | None, spec: str = ".4f") -> str:
    """``value`` formatted, or "-" when there is none: a rate over an empty class is NaN, and
    the stored report holds it as null (a one-class source, a crop-only or frame-only set)."""
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _interval(values: list[float | None] | None, percent: bool = False) -> str:
    """value [low, high]; "-" for an absent value, the value alone for an absent interval.
    ``percent``: as percentages with one decimal (rates), else to 3 decimals."""
    value, low, high = (list(values or []) + [None, None, None])[:3]
    spec = ".1%" if percent else ".3f"
    shown = number(value, spec)
    if shown == "-" or "-" in (number(low), number(high)):
        return shown
    return f"{shown} [{number(low, spec)}, {number(high, spec)}]"


def _figure(figs: dict[str, Any], name: str) -> list[float | None] | None:
    found: list[float | None] | None = figs.get(name)
    return found if found is not None else figs.get(STORED_AS.get(name, name))


def intervals_table(
    rows: list[tuple[str, dict[str, Any]]], css: str, percent: bool = False
) -> SafeString:
    """One row per label: APCER / BPCER / HTER / AUC as value [low, high] (95 %; HTER's,
    the mean of APCER's and BPCER's bounds, at least 90 %, as its caption says); with
    ``percent`` the rates as percentages (AUC stays a number)."""
    cells = [
        (label, *(_interval(_figure(figs, n), percent and n != "AUC") for n in INTERVALS))
        for label, figs in rows
    ]
    body = format_html_join(
        "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", cells
    )
    return format_html(
        '<table class="{}"><caption>{}</caption><thead><tr><th></th><th>APCER</th>'
        "<th>BPCER</th><th>HTER</th><th>AUC</th></tr></thead><tbody>{}</tbody></table>",
        css,
        HTER_WORDS,
        body,
    )


def _rate(value: float) -> str:
    return shown("BPCER", value)  # a percentage with one decimal, "-" for none


def _target(apcer: float) -> str:
    return f"APCER {apcer * 100:g} %"  # the report's own targets: 1, 5 and 10 %


def _det_text(live: np.ndarray, spoof: np.ndarray, note: str) -> tuple[str, SafeString]:
    """The DET curve's text alternative: its alt (the figures it shows, or why it is blank)
    and a table of them (EER, BPCER at each target APCER, with the thresholds)."""
    figs = plots.det_figures(live, spoof)
    counted = f"{live.size} bona fide and {spoof.size} attack"
    alt = f"DET curve of {counted} presentations"
    if note:  # "no DET curve: why"
        alt += f", not drawn: {note.removeprefix('no DET curve: ')}"
    if math.isfinite(figs.eer):
        at = ", ".join(f"{_rate(b)} at {_target(t)}" for t, _, b in figs.points)
        alt += f". EER {_rate(figs.eer)}; BPCER {at}"
    alt += "."
    rows = [("EER (APCER = BPCER)", _rate(figs.eer), number(figs.eer_threshold))]
    rows += [(f"BPCER at {_target(t)}", _rate(b), number(th)) for t, th, b in figs.points]
    body = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows)
    table = format_html(
        '<table id="plot-det-data"><caption>The DET curve in figures (all attacks pooled, '
        "{} presentations)</caption><thead><tr><th>figure</th><th>value</th><th>threshold"
        "</th></tr></thead><tbody>{}</tbody></table>",
        counted,
        body,
    )
    return alt, table


def _histogram_text(
    live: np.ndarray, spoof: np.ndarray, threshold: float
) -> tuple[str, SafeString]:
    """The histograms' text alternative: its alt (counts on each side of the threshold) and
    a table of the counts per score band, as drawn."""
    above = (int((live >= threshold).sum()), int((spoof >= threshold).sum()))
    alt = (
        f"Histograms of the scores (P(bona fide)) of {live.size} bona fide and {spoof.size} "
        f"attack presentations in {plots.BANDS} bands of {1 / plots.BANDS:.2f}, threshold "
        f"{threshold:.4f}: at or above it {above[0]} bona fide and "
        f"{amount(above[1], 'attack')}, below it {live.size - above[0]} bona fide and "
        f"{amount(spoof.size - above[1], 'attack')}."
    )
    edges = plots.band_edges()
    bands = zip(plots.band_counts(live), plots.band_counts(spoof), strict=True)
    rows = (
        (f"{edges[i]:.2f} to {edges[i + 1]:.2f}", n_live, n_spoof)
        for i, (n_live, n_spoof) in enumerate(bands)
    )
    table = format_html(
        '<table id="plot-histogram-data"><caption>Presentations per score band (each band '
        "holds its lower edge; the last also 1.00)</caption><thead><tr><th>score</th>"
        "<th>bona fide</th><th>attack</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows),
    )
    return alt, table


def plot_figures(live: np.ndarray, spoof: np.ndarray, threshold: float) -> SafeString:
    """The DET curve and score histograms, drawn in memory, as inline images (never a file),
    each with its text alternative: an alt that gives its figures, and a table of them under
    a disclosure (WCAG 1.1.1: a screen reader has the numbers a sighted reader sees)."""
    (det, note), (histogram, _) = plots.png_plots(live, spoof, threshold)
    det_alt, det_table = _det_text(live, spoof, note)
    histogram_alt, histogram_table = _histogram_text(live, spoof, threshold)
    shown_plots = (
        ("det", det, det_alt, note, "The DET curve's figures", det_table),
        ("histogram", histogram, histogram_alt, "", "Counts per score band", histogram_table),
    )
    return format_html_join(
        "",
        '<figure class="evaluation-plot">'
        '<img id="plot-{}" alt="{}" src="data:image/png;base64,{}">'
        '<figcaption>{}</figcaption><details class="plot-data"><summary>{}</summary>{}'
        "</details></figure>",
        (
            (name, alt, base64.b64encode(png).decode("ascii"), caption, summary, table)
            for name, png, alt, caption, summary, table in shown_plots
        ),
    )


def figure_rows(calibration: Calibration) -> list[tuple[str, dict[str, Any]]]:
    """The labelled rows a calibration's figures hold: never an in-sample figure of a fit."""
    figs = calibration.figures or {}
    if figs.get("version") != 2:  # stored before held-out figures: its k-fold row only
        old = [
            ("before, on the sample (nothing fitted)", figs.get("before")),
            ("calibrated, k-fold over images (held out)", figs.get("cross_validated")),
        ]
        return [(label, f) for label, f in old if f]
    current = figs.get("current") or "current maps"
    # a promoted candidate's "now", taken before what it replaced (Calibration.over)
    fitted = figs.get("fitted_over")
    when = "when fitted" if fitted else "now"
    threshold = fitted["threshold"] if fitted else calibration_threshold(figs, "before")
    rows = [(now_label(current, threshold, when), figs["now"])]
    rows += [
        (f"{when}, {KIND_WORDS[k][1]}", f) for k, f in (figs.get("now_by_capture") or {}).items()
    ]
    held = figs.get("held_out")
    if held:
        rows.append((f"calibrated, held out ({held['method']})", held["figures"]))
        rows += [(f"held out, {KIND_WORDS[k][1]}", f) for k, f in held["by_capture"].items()]
    return rows


def calibration_threshold(figs: dict[str, Any], which: str) -> float | None:
    value = (figs.get("threshold") or {}).get(which)
    return float(value) if value is not None else None


def figures_table(calibration: Calibration) -> SafeString:
    """APCER / BPCER / HTER (percentages) and AUC with 95 % intervals: now and held out."""
    rows = figure_rows(calibration)
    table = intervals_table(rows, "calibration-figures", percent=True)
    needs = (calibration.figures or {}).get("held_out_needs")
    note = format_html('<p class="held-out-needs">{}</p>', needs) if needs else ""
    return format_html("{}{}", table, note)


def unfitted(before: dict[str, float], after: dict[str, float]) -> str:
    """A kind the sample could not calibrate: it has the shipped map, kept or gone back to."""
    kept = same_map(Platt(**before), Platt(**after))
    return "shipped map kept" if kept else "back to the shipped map"


def maps_table(calibration: Calibration) -> SafeString:
    """Per capture kind: images, slope and offset before and after, the sample's weight."""
    figs = calibration.figures or {}
    if figs.get("version") != 2:
        maps = maps_of(calibration.params)
        rows = [
            (KIND_WORDS[k][1], "-", number(m.a), number(m.b), "one map for both kinds")
            for k, m in maps.items()
        ]
    else:
        rows = []
        for kind, m in figs["maps"].items():
            before, after = m["before"], m["after"]
            rows.append(
                (
                    KIND_WORDS[kind][1],
                    f"{m['live']} live, {m['spoof']} spoof",
                    f"{number(before['a'])} → {number(after['a'])}",
                    f"{number(before['b'])} → {number(after['b'])}",
                    format(m["weight"], ".0%") if m["fitted"] else unfitted(before, after),
                )
            )
    body = format_html_join(
        "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
    )
    return format_html(
        '<table class="calibration-maps"><thead><tr><th>capture kind</th><th>images</th>'
        "<th>slope</th><th>offset</th><th>weight of the sample</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        body,
    )


def sentences(calibration: Calibration) -> SafeString:
    said = (calibration.figures or {}).get("sentences") or []
    return format_html(
        '<ul class="calibration-changes">{}</ul>',
        format_html_join("", "<li>{}</li>", ((s,) for s in said)),
    )


def refusals(calibration: Calibration) -> str:
    found = (calibration.figures or {}).get("refused") or {}
    return refusal_codes(found) or "none"


def describe(calibration: Calibration, element: str = "calibration-status") -> SafeString:
    target = (
        f"chosen at target APCER {calibration.target_apcer:.2%}"
        if calibration.target_apcer is not None
        else (calibration.figures or {}).get("threshold", {}).get("rule", "where APCER = BPCER")
    )
    return format_html(
        '<div id="{}"><p>Calibration #{} ({} profile) by {} on {} ({}): '
        "threshold {}, {}; {} before the first calibration; {} live and {} spoof images, "
        "{} refused by the gates ({}).</p>{}{}{}</div>",
        element,
        calibration.pk,
        calibration.profile,
        calibration.created_by,
        f"{calibration.created_at:%Y-%m-%d %H:%M} UTC",
        calibration.origin,
        f"{calibration.threshold:.4f}",
        target,
        f"{calibration.previous_threshold:.4f}",
        calibration.bona_fide,
        calibration.attacks,
        calibration.refused,
        refusals(calibration),
        sentences(calibration),
        maps_table(calibration),
        figures_table(calibration),
    )


@dataclass(frozen=True)
class Flips:
    checks: int  # verdicts recorded with a shadow verdict
    live_to_spoof: int
    spoof_to_live: int


def shadow_flips(tenant: Tenant) -> Flips:
    """The tenant's checks since its shadow began, and how many the candidate would flip."""
    since = datetime.fromtimestamp((tenant.shadow_calibration or {})["since"], tz=UTC)
    counted = LivenessCheck.objects.filter(
        tenant=tenant, created_at__gte=since, shadow_is_live__isnull=False
    ).aggregate(
        checks=Count("pk"),
        live_to_spoof=Count("pk", filter=Q(is_live=True, shadow_is_live=False)),
        spoof_to_live=Count("pk", filter=Q(is_live=False, shadow_is_live=True)),
    )
    return Flips(counted["checks"], counted["live_to_spoof"], counted["spoof_to_live"])


def describe_flips(tenant: Tenant) -> SafeString:
    flips = shadow_flips(tenant)
    return format_html(
        '<p id="shadow-flips">Of <strong>{}</strong> checks recorded with both verdicts, '
        '<strong id="shadow-live-to-spoof">{}</strong> live would become spoof and '
        '<strong id="shadow-spoof-to-live">{}</strong> spoof would become live; the '
        "others keep their verdict.</p>",
        flips.checks,
        flips.live_to_spoof,
        flips.spoof_to_live,
    )


# In place of the flips for a user who may not view check records (they are counted from them).
FLIPS_UNSEEN = "<p>The verdicts it would flip are shown to users who may view liveness checks.</p>"


def describe_shadow(tenant: Tenant, with_flips: bool = True) -> SafeString | str:
    """The shadow candidate; ``with_flips``: and the verdicts it would flip."""
    shadow = tenant.shadow_calibration
    if not shadow:
        return "No shadow candidate."
    found = shadow_candidate(tenant)
    until = datetime.fromtimestamp(shadow["until"], tz=UTC)
    running = "runs until" if until > datetime.now(tz=UTC) else "ended"
    note = ""
    if why := tenant.not_applied(shadow):
        note = f" {not_applied_said(why)}; no check records its verdict."
    return format_html(
        '<div id="shadow-status"><p>Candidate #{} (threshold {}) in shadow since {}; it {} {}.'
        "{}</p>{}{}</div>",
        shadow["id"],
        f"{shadow['threshold']:.4f}",
        f"{datetime.fromtimestamp(shadow['since'], tz=UTC):%Y-%m-%d %H:%M} UTC",
        running,
        f"{until:%Y-%m-%d %H:%M} UTC",
        note,
        describe_flips(tenant) if with_flips else mark_safe(FLIPS_UNSEEN),
        describe(found, "shadow-candidate") if found else "",
    )


def shadow_warning(tenant: Tenant, with_flips: bool = True) -> SafeString | str:
    """For the upload page: the candidate in shadow that a shadow upload would set aside (its
    flips then no longer counted); ``with_flips``: and its flips so far. "" when none."""
    shadow = tenant.shadow_calibration
    if not shadow:
        return ""
    until = datetime.fromtimestamp(shadow["until"], tz=UTC)
    running = "running until" if until > datetime.now(tz=UTC) else "ended"
    flips = ""
    if with_flips:
        counted = shadow_flips(tenant)
        flips = (
            f" So far {counted.checks} checks recorded with both verdicts: "
            f"{counted.live_to_spoof} live → spoof, {counted.spoof_to_live} spoof → live."
        )
    return format_html(
        '<ul class="messagelist"><li class="warning" id="shadow-warning">{} has shadow candidate '
        "#{} (threshold {}) in shadow since {}, {} {}.{} A shadow upload replaces it: it is set "
        "aside and its flips are no longer counted. Promote or discard it on the tenant's page "
        "first to act on what it has shown.</li></ul>",
        tenant.name,
        shadow["id"],
        f"{shadow['threshold']:.4f}",
        f"{datetime.fromtimestamp(shadow['since'], tz=UTC):%Y-%m-%d %H:%M} UTC",
        running,
        f"{until:%Y-%m-%d %H:%M} UTC",
        flips,
    )
