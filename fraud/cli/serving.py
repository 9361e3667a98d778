"""fraud CLI commands: `score`, `serve` (issue 6: batch scoring, drift, HTTP service)."""

from fraud.cli import app  # noqa: F401
