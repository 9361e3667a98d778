"""detection CLI commands: `check-data`, `convert` (issue 7: dataset validation and converters)."""

from detection.cli import app  # noqa: F401
