import json
import math
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from liveness.models import Evaluation
from liveness.runtime import load_engine
from ml.errors import ModelInstallError
from ml.evaluate import Report, evaluate_folder
from ml.profiles import DEFAULT_PROFILE, PROFILES


def store(report: Report) -> Evaluation:
    data = report.to_dict()
    auc = data["at_threshold"]["AUC"]
    return Evaluation.objects.create(
        folder=report.folder,
        profile=report.profile,
        threshold=report.threshold,
        bona_fide=data["presentations"]["bona_fide"]["scored"],
        attacks=data["presentations"]["attack"]["scored"],
        auc=None if math.isnan(auc) else auc,
        report=json.loads(json.dumps(data, allow_nan=False, default=_no_nan)),
    )


def _no_nan(value: object) -> object:
    raise TypeError(f"not JSON serialisable: {value!r}")


class Command(BaseCommand):
    help = (
        "Score a folder laid out as live/ (bona fide) and spoof/ (attack presentations) and "
        "report APCER (per PAI species), BPCER, ACER, AUC, EER, BPCER at APCER 1/5/10%, and "
        "the quality gates' refusals. The result is stored for the admin's threshold tool."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--threshold",
            type=float,
            default=settings.LIVENESS_DEFAULT_THRESHOLD,
            help="is_live threshold (default 0.5)",
        )
        parser.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--plots", type=Path, help="write det.png and histogram.png here")
        parser.add_argument("--no-save", action="store_true", help="do not store the result")

    def handle(self, *args: Any, folder: Path, threshold: float, **options: Any) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise CommandError("--threshold must be between 0 and 1.")
        if not (folder / "live").is_dir() or not (folder / "spoof").is_dir():
            raise CommandError(f"{folder} must contain live/ and spoof/ folders.")
        try:
            engine = load_engine()
        except ModelInstallError as exc:
            raise CommandError(str(exc)) from exc
        report = evaluate_folder(
            engine, folder, threshold, progress=not options["json"], profile=options["profile"]
        )
        if options["plots"]:
            from ml.plots import save_plots  # matplotlib only when asked for

            for path in save_plots(report, options["plots"]):
                self.stderr.write(f"wrote {path}")
        if not options["no_save"]:
            store(report)
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            self.stdout.write(report.format())
