"""detection CLI commands: `export`, `bench`, `video` (issue 9)."""

from detection.cli import app  # noqa: F401
