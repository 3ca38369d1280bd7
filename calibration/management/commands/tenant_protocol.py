from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from calibration.calibrate import MAX_IMAGE_BYTES
from calibration.management.folders import (
    command_engine,
    has_images,
    labelled_folder,
    no_source_said,
)
from ml import protocol
from ml.evaluate import amount, evaluate_folder
from ml.profiles import DEFAULT_PROFILE, PROFILES


class Command(BaseCommand):
    help = (
        "Tenant-by-source protocol on a labelled folder with a manifest source column: each "
        "source is a tenant, calibrated on half its images and scored on the other half "
        "(then swapped); prints pooled APCER/BPCER/HTER/AUC uncalibrated and calibrated."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--profile", choices=sorted(PROFILES), action="append", dest="profiles")

    def handle(self, *args: Any, folder: Path, profiles: list[str] | None, **options: Any) -> None:
        if not (folder / "manifest.csv").is_file():
            raise CommandError(f"{folder} has no manifest.csv with a source column.")
        labelled_folder(folder)
        has_images(folder)
        if said := no_source_said(folder):
            raise CommandError(said)
        names = profiles or [DEFAULT_PROFILE]
        engine = command_engine(names)
        report = evaluate_folder(
            engine,
            folder,
            0.5,
            progress=False,
            scored_profiles=names,
            max_image_bytes=MAX_IMAGE_BYTES,
        )
        if not any(s.source for s in report.samples):
            raise CommandError(
                f"No image in {folder} has a source: the rows of its manifest.csv that name one "
                "name no image of live/ or spoof/."
            )
        unnamed = sum(s.passed and not s.source for s in report.samples)
        for name in names:
            report.profile = name
            self.stdout.write(protocol.format_outcome(protocol.run(report), name))
        if unnamed:  # left out of every figure above, which say nothing of them
            self.stdout.write(
                f"{amount(unnamed, 'judged image')} "
                f"{'has' if unnamed == 1 else 'have'} no source in the manifest and "
                f"{'is' if unnamed == 1 else 'are'} left out."
            )
