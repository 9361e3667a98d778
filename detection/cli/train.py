"""detection CLI commands: `train`, `evaluate`, `mine`, `augment-preview` (issue 8)."""

from detection.cli import app  # noqa: F401
