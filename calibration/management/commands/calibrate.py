import getpass
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts import audit
from accounts.management.tenants import tenant_named
from calibration.calibrate import (
    MAX_SHADOW_DAYS,
    MAX_TARGET_APCER,
    Basis,
    CalibrationError,
    fit,
    folder_images,
    group_kind_of,
    score,
    store,
    target_apcer_refused,
    unapplied_note,
)
from calibration.management.folders import (
    CALIBRATE_COUNTS,
    command_engine,
    has_images,
    images_without_rows,
    labelled_folder,
)
from ml import labelled, tenant_calibration
from ml.evaluate import amount


class Command(BaseCommand):
    help = (
        "Calibrate a tenant on its own labelled captures: DIR holds live/ and spoof/ images "
        "(groups for the held-out figures: DIR/manifest.csv's subject or source column, or "
        "live/<group>/ folders, one deep). Fits one monotone map per capture kind (full "
        "frame, face crop) from the fused logit to P(live), with a prior centred on the "
        "shipped map that gives way as the sample grows; keeps the threshold unless "
        "--target-apcer or --equal-error-rate sets it on the sample. Prints what changes and "
        "held-out figures only. Uses no quota."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("tenant", help="tenant name")
        parser.add_argument("folder", type=Path)
        rule = parser.add_mutually_exclusive_group()  # the threshold is set one way or kept
        rule.add_argument(
            "--target-apcer",
            type=float,
            default=None,
            help=f"a fraction above 0 and at most {MAX_TARGET_APCER:g}, e.g. 0.05 for 5 %%",
        )
        rule.add_argument(
            "--equal-error-rate",
            action="store_true",
            help="set the threshold where APCER = BPCER on the calibrated sample",
        )
        how = parser.add_mutually_exclusive_group()
        how.add_argument(
            "--dry-run", action="store_true", help="show what would change; store nothing"
        )
        how.add_argument(
            "--shadow",
            type=int,
            metavar="DAYS",
            default=None,
            help=f"store it as a shadow candidate for DAYS (1-{MAX_SHADOW_DAYS}) days beside "
            "the active calibration: every check records both verdicts; promote or discard it "
            "on the tenant's admin page",
        )

    def handle(self, *args: Any, tenant: str, folder: Path, **options: Any) -> None:
        found = tenant_named(tenant)
        labelled_folder(folder)
        has_images(folder)
        shadow = options["shadow"]
        if shadow is not None and not 1 <= shadow <= MAX_SHADOW_DAYS:
            raise CommandError(f"--shadow must be 1 to {MAX_SHADOW_DAYS} days.")
        target = options["target_apcer"]
        if target is not None and (refused := target_apcer_refused(target)):
            raise CommandError(refused)
        basis = Basis.of(found)  # what it computes against; store checks it is still so
        engine = command_engine([found.profile])
        scored = score(engine, found, folder_images(folder), None, group_kind_of(folder))
        names = [placed.name for placed, _ in labelled.folder_images(folder)]
        if unmatched := images_without_rows(folder, names, CALIBRATE_COUNTS):
            self.stderr.write(f"warning: {unmatched}")
        try:
            result = fit(found, scored, target, options["equal_error_rate"])
        except CalibrationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"tenant {found.name} ({found.profile} profile, crop policy {found.crop_policy}): "
            f"{scored.live} live and {amount(scored.spoof, 'spoof image')} judged, "
            f"{scored.refused_said()}"
        )
        if note := unapplied_note(found):
            self.stdout.write(note)
        self.stdout.write(tenant_calibration.report(result))
        if options["dry_run"]:
            self.stdout.write("dry run: nothing stored, the tenant is unchanged")
            return
        try:
            stored = store(
                found,
                basis,
                scored,
                result,
                getpass.getuser(),
                "command",
                shadow,
                lambda said: audit.by_command(found, "calibrate", said),
            )
        except CalibrationError as exc:
            raise CommandError(str(exc)) from exc
        if shadow is None:
            self.stdout.write(f"stored as calibration #{stored.pk}, now active")
        else:
            # basis: as store found the tenant under its lock
            aside = (
                "" if basis.shadow is None else f", replacing candidate #{basis.shadow} (set aside)"
            )
            self.stdout.write(
                f"stored as calibration #{stored.pk}, in shadow for {amount(shadow, 'day')}"
                f"{aside}: {audit.still_answers(basis.active)}; every check also records "
                "this one's verdict"
            )
