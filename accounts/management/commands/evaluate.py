from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ml.engine import LivenessEngine
from ml.errors import ModelInstallError
from ml.evaluate import evaluate_folder


class Command(BaseCommand):
    help = "Score a folder laid out as live/ and spoof/ and print APCER, BPCER, ACER, AUC, EER."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--threshold",
            type=float,
            default=settings.LIVENESS_DEFAULT_THRESHOLD,
            help="is_live threshold (default 0.5)",
        )

    def handle(self, *args: Any, folder: Path, threshold: float, **options: Any) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise CommandError("--threshold must be between 0 and 1.")
        if not (folder / "live").is_dir() or not (folder / "spoof").is_dir():
            raise CommandError(f"{folder} must contain live/ and spoof/ folders.")
        try:
            engine = LivenessEngine.load(settings.MODEL_DIR, threads=settings.ENGINE_THREADS)
        except ModelInstallError as exc:
            raise CommandError(str(exc)) from exc
        report = evaluate_folder(engine, folder, threshold)
        self.stdout.write(report.format())
