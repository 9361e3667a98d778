"""fraud CLI commands: `train`, `evaluate` (issue 4: the model stack and its ablation report)."""

from fraud.cli import app  # noqa: F401
