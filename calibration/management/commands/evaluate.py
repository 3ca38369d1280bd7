import json
import math
from argparse import ArgumentParser
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from django.core.management.base import BaseCommand, CommandError

from accounts.management.tenants import tenant_named
from accounts.models import DEFAULT_THRESHOLD, Tenant
from calibration.calibrate import MAX_IMAGE_BYTES, refusal_codes, unapplied_note
from calibration.management.folders import (
    command_engine,
    has_images,
    images_without_rows,
    labelled_folder,
)
from calibration.models import Evaluation
from ml import pad_metrics
from ml.anonymised import anonymised
from ml.evaluate import Report, amount, evaluate_folder
from ml.profiles import DEFAULT_PROFILE, PROFILES, Platt, scoring_digest
from ml.quality import CROP_POLICIES


def _finite(value: Any) -> Any:
    """NaN (a rate with no presentation to count) becomes null in the stored JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def store(
    report: Report,
    made: dict[str, Any] | None = None,
    calibration: int | None = None,
    tenant: Tenant | None = None,
) -> Evaluation:
    """The report as it is kept (ml.anonymised: no file, folder or subject name; the terminal
    and --json have them). ``made``: the report's to_dict(), when already made (its bootstrap
    takes seconds); ``calibration``: the id of the tenant calibration whose maps scored it;
    ``tenant``: the tenant it was run as, whose deletion deletes it."""
    data = anonymised(_finite(made or report.to_dict()))
    auc = data["at_threshold"]["AUC"]
    return Evaluation.objects.create(
        tenant=tenant,
        profile=report.profile,
        threshold=report.threshold,
        bona_fide=data["presentations"]["bona_fide"]["scored"],
        attacks=data["presentations"]["attack"]["scored"],
        auc=auc,
        report=json.loads(json.dumps(data, allow_nan=False, default=_no_nan)),
        crop_policy=report.crop_policy,
        calibrated=report.calibration is not None,
        calibration=calibration if report.calibration is not None else None,
        scored_with=scoring_digest(report.profile),
    )


def _no_nan(value: object) -> object:
    raise TypeError(f"not JSON serialisable: {value!r}")


class Chosen(NamedTuple):
    profile: str
    policy: str
    threshold: float
    maps: dict[str, Platt] | None
    calibration: int | None = None  # the id of the calibration whose maps these are


def scored_any(report: Report) -> None:
    """Refuse a run whose gates passed no image (every file undecodable, or refused): stored,
    its report of 0 scored images was the latest of its profile, and the tenant form's target
    APCER then said no evaluation existed though an earlier one did."""
    if any(sample.passed for sample in report.samples):
        return
    refused = Counter(sample.failures[0] for sample in report.samples if sample.failures)
    raise CommandError(
        f"No image of {report.folder} was scored: the gates refused all "
        f"{amount(len(report.samples), 'image')} ({refusal_codes(refused)}). Nothing stored."
    )


def writable(plots: Path | None) -> Path | None:
    """--plots' directory, made now: a path it cannot write is refused before the images are
    judged."""
    if plots:
        try:
            plots.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"--plots: cannot write to {plots}: {exc}") from exc
    return plots


class Command(BaseCommand):
    help = (
        "Score a folder laid out as live/ (bona fide) and spoof/ (attack presentations) and "
        "report, in ISO/IEC 30107-3 terms, APCER per PAI species and the worst of them, "
        "BPCER, BPCER20, BPCER10, AUC and EER, for all, by capture kind and by source, with "
        "95 % intervals from a bootstrap over sources (or subjects); thresholds chosen on the "
        "data only with leave-one-source-out figures; and the quality gates' refusals. The "
        "result is stored for the admin (Evaluations) and its threshold tool, without the "
        "images' file names, the folder or the subjects (group folders and subjects "
        "numbered); with --tenant it is the tenant's, deleted with it."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="is_live threshold (default 0.5, or the tenant's with --tenant)",
        )
        parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
        parser.add_argument(
            "--crop-policy",
            choices=CROP_POLICIES,
            default=None,
            help="judge (default) or refuse face crops, as a tenant's crop_policy",
        )
        parser.add_argument(
            "--tenant",
            help="evaluate as this tenant: its profile, crop policy, threshold and calibration",
        )
        parser.add_argument(
            "--resamples",
            type=int,
            default=pad_metrics.RESAMPLES,
            help=f"of the bootstrap over sources (default {pad_metrics.RESAMPLES})",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=pad_metrics.SEED,
            help=f"of the bootstrap: the same seed gives the same intervals "
            f"(default {pad_metrics.SEED})",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the report as JSON, each image with its file, source and subject as "
            "named (the stored report names no file, folder or subject)",
        )
        parser.add_argument("--plots", type=Path, help="write det.png and histogram.png here")
        parser.add_argument("--no-save", action="store_true", help="do not store the result")

    def handle(self, *args: Any, folder: Path, threshold: float | None, **options: Any) -> None:
        tenant = tenant_named(options["tenant"]) if options["tenant"] else None
        chosen = self.chosen(tenant, threshold, options)
        labelled_folder(folder)
        plots = writable(options["plots"])  # before judging every image, not after
        has_images(folder)
        report = evaluate_folder(
            command_engine([chosen.profile]),
            folder,
            chosen.threshold,
            progress=not options["json"],
            profile=chosen.profile,
            crop_policy=chosen.policy,
            maps=chosen.maps,
            tenant=tenant.name if tenant else "",
            resamples=options["resamples"],
            seed=options["seed"],
            scored_profiles=[chosen.profile],
            max_image_bytes=MAX_IMAGE_BYTES,
        )
        scored_any(report)
        self.say(report, folder, plots, options, chosen.calibration, tenant)

    def chosen(
        self, tenant: Tenant | None, threshold: float | None, options: dict[str, Any]
    ) -> Chosen:
        """The options, each defaulting to the tenant's setting (or the service's default);
        refused when out of range or not the tenant's profile."""
        profile = options["profile"] or (tenant.profile if tenant else DEFAULT_PROFILE)
        policy = options["crop_policy"] or (tenant.crop_policy if tenant else "judge")
        if threshold is None:
            threshold = tenant.threshold if tenant else DEFAULT_THRESHOLD
        if not 0.0 <= threshold <= 1.0:
            raise CommandError("--threshold must be between 0 and 1.")
        if not 100 <= options["resamples"] <= 100_000:
            raise CommandError("--resamples must be between 100 and 100000.")
        if options["seed"] < 0:  # numpy's bootstrap refuses it only after every image is judged
            raise CommandError("--seed must be a non-negative integer.")
        if tenant is None:
            return Chosen(profile, policy, threshold, None)
        if tenant.profile != profile:
            raise CommandError(f"tenant {tenant.name} uses the {tenant.profile} profile.")
        if note := unapplied_note(tenant):
            self.stderr.write(f"warning: {note}")
        maps = tenant.maps()
        calibration = (tenant.calibration or {}).get("id") if maps is not None else None
        return Chosen(profile, policy, threshold, maps, calibration)

    def say(
        self,
        report: Report,
        folder: Path,
        plots: Path | None,
        options: dict[str, Any],
        calibration: int | None,
        tenant: Tenant | None,
    ) -> None:
        """Warnings and plots on stderr, the report on stdout, with the files' names and the
        subjects (and stored without them unless --no-save)."""
        unmatched = images_without_rows(folder, [s.file for s in report.samples])
        for warning in [*report.warnings(), *([unmatched] if unmatched else [])]:
            self.stderr.write(f"warning: {warning}")
        if plots:
            from ml.plots import save_plots  # matplotlib only when asked for

            for path, note in save_plots(report, plots):
                self.stderr.write(f"wrote {path}" + (f" ({note})" if note else ""))
        made = report.to_dict()
        if not options["no_save"]:
            store(report, made, calibration, tenant)
        if options["json"]:
            self.stdout.write(json.dumps(_finite(made), indent=2))
        else:
            self.stdout.write(report.format(made))
