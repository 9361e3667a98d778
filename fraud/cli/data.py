"""fraud CLI commands: `make-data` (issue 3: transaction generator)."""

from fraud.cli import app  # noqa: F401
