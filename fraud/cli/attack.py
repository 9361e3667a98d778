"""fraud CLI commands: `attack` (issue 5: threat model, attacks, adversarial training)."""

from fraud.cli import app  # noqa: F401
