import getpass
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts import audit
from calibration.calibrate import (
    CalibrationError,
    fit_and_store,
    folder_images,
    score,
    warnings_for,
)
from calibration.management.folders import command_engine, labelled_folder, tenant_named
from ml import calibration


class Command(BaseCommand):
    help = (
        "Calibrate a tenant on its own labelled captures: DIR holds live/ and spoof/ images. "
        "Fits a monotone map from the fused logit to a calibrated P(live) (shrunk toward the "
        "uncalibrated default on small samples) and sets the tenant's threshold: at "
        "--target-apcer when given, else where APCER = BPCER on the sample. Uses no quota."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("tenant", help="tenant name")
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--target-apcer", type=float, default=None, help="0..1, e.g. 0.05 for 5 %%"
        )

    def handle(self, *args: Any, tenant: str, folder: Path, **options: Any) -> None:
        found = tenant_named(tenant)
        images = folder_images(labelled_folder(folder))
        scored = score(command_engine(), found, images)
        for warning in warnings_for(scored):
            self.stderr.write(f"warning: {warning}")
        previous = found.threshold
        try:
            stored, fitted = fit_and_store(
                found, scored, options["target_apcer"], getpass.getuser(), "command"
            )
        except CalibrationError as exc:
            raise CommandError(str(exc)) from exc
        audit.by_command(found, "calibrate", audit.calibrated(stored, previous, stored.threshold))
        target = options["target_apcer"]
        rule = f"at target APCER {target:.3f}" if target is not None else "where APCER = BPCER"
        self.stdout.write(
            f"tenant {found.name} ({found.profile} profile, crop policy {found.crop_policy}): "
            f"{stored.bona_fide} live and {stored.attacks} spoof images judged, "
            f"{stored.refused} refused by the gates"
        )
        self.stdout.write(calibration.format_fitted(fitted, previous))
        self.stdout.write(f"threshold chosen {rule}; stored as calibration #{stored.pk}")
