"""`fraud`: the transaction-fraud case study's command line (thin: parses, calls the library, prints)."""

from __future__ import annotations

import typer

from shared.cli_common import print_environment

app = typer.Typer(
    help="Transaction fraud detection: GNN over the transaction graph + autoencoder + XGBoost.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Run `fraud COMMAND --help` for the options of each command."""


@app.command(epilog="Example: fraud info")
def info() -> None:
    """Print the versions of the libraries the fraud models depend on, and where runs and caches go."""
    print_environment(("dl-case-studies", "torch", "torch-geometric", "xgboost-cpu", "scikit-learn", "pandas",
                       "pyarrow", "fastapi", "uvicorn"))


# Each area registers its commands on `app` in its own module (one owner per file, no merge fights).
from fraud.cli import data, model, feedback, attack, serving  # noqa: E402,F401,I001  (help lists commands in workflow order)

if __name__ == "__main__":
    app()
