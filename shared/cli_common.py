"""What both typer CLIs share: the `--seed`/`--config`/`--set` options and friendly error exits."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from shared.config import ConfigError
from shared.runs import ManifestError
from shared.tabular import TabularError

SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data and metrics.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file; flags override it.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="Override one config key as section.key=value, e.g. --set seed=3 (repeatable); "
                      "an unknown key lists the valid ones.")]

QUIET_HELP = ("Print only the result line (and a progress bar on a terminal); library output (Ultralytics, torch, "
              "per-epoch logs, warnings) goes to log.txt in the output folder.")

# Errors a user can fix: print the message, no traceback, exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ManifestError, TabularError, FileNotFoundError)


def friendly_errors(*extra: type[BaseException]) -> Callable:
    """Decorate a command so user-fixable errors print as one clear line and exit with status 2."""
    kinds = USER_ERRORS + extra

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except kinds as exc:
                typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
                sys.exit(2)

        return inner

    return wrap


def show_progress(quiet: bool) -> bool:
    """Progress bars always in verbose mode; in quiet mode only on a terminal, so pipes and CI logs stay clean."""
    return not quiet or sys.stderr.isatty()


def print_environment(names: tuple[str, ...]) -> None:
    """Print installed versions of `names` and the project's cache/run folders."""
    from shared.paths import cache_dir, runs_dir
    from shared.runs import git_commit, package_versions

    for name, version in package_versions(names).items():
        typer.echo(f"{name:32s} {version}")
    typer.echo(f"{'git commit':32s} {git_commit() or '(not a git checkout)'}")
    typer.echo(f"{'cache dir':32s} {cache_dir()}")
    typer.echo(f"{'runs dir':32s} {runs_dir()}")
