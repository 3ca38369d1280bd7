from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ml.errors import ModelDirRefused, ModelDirUnwritable, ModelInstallError
from ml.install import install_models


class Command(BaseCommand):
    help = "Verify and install the model files into MODEL_DIR (does nothing when up to date)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--source",
            type=Path,
            default=None,
            help="folder holding the model files (default: MODEL_SOURCE)",
        )
        parser.add_argument(
            "--dest", type=Path, default=None, help="install folder (default: MODEL_DIR)"
        )

    def handle(self, *args: Any, source: Path | None, dest: Path | None, **options: Any) -> None:
        source = source or settings.MODEL_SOURCE
        dest = dest or settings.MODEL_DIR
        try:
            changed = install_models(source, dest)
        except ModelDirRefused as exc:  # nothing done: a wrong folder given, a usage error
            raise CommandError(f"{exc} (set MODEL_DIR or pass --dest)", returncode=2) from exc
        except ModelDirUnwritable as exc:
            raise CommandError(f"{exc} (set MODEL_DIR or pass --dest)") from exc
        except ModelInstallError as exc:
            hint = f"source: {source}; set MODEL_SOURCE or pass --source"
            raise CommandError(f"{exc} ({hint})") from exc
        state = "installed" if changed else "already up to date"
        self.stdout.write(f"Models {state} in {dest}")
