"""Every command of both CLIs has real help text ending with a runnable example, and `--help` stays fast
(no heavy imports)."""

import shlex
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from detection.cli import app as detection_app
from fraud.cli import app as fraud_app

APPS = {"fraud": fraud_app, "detection": detection_app}


def _commands(app):
    group = typer.main.get_command(app)
    return sorted(group.commands)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_command_has_help(name):
    app = APPS[name]
    runner = CliRunner()
    for cmd in _commands(app):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0, f"{name} {cmd} --help failed: {r.output}"
        click_cmd = typer.main.get_command(app).commands[cmd]
        assert (click_cmd.help or "").strip(), f"{name} {cmd} has no help text"


@pytest.mark.parametrize("name", sorted(APPS))
def test_help_does_not_import_heavy_packages(name):
    code = (f"import sys\nfrom {name}.cli import app\n"
            "heavy = [m for m in ('torch', 'ultralytics', 'xgboost', 'torch_geometric', 'onnxruntime') "
            "if m in sys.modules]\nassert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_command_help_ends_with_an_example_that_parses(name):
    """The last lines of `--help` are `Example: <app> <command> ...`, and click accepts that command line
    (every option exists, required ones are given, values have the right type)."""
    app = APPS[name]
    group = typer.main.get_command(app)
    runner = CliRunner()
    for cmd in _commands(app):
        click_cmd = group.commands[cmd]
        example = (click_cmd.epilog or "").strip()
        assert example.startswith(f"Example: {name} {cmd}"), f"{name} {cmd}: epilog {example!r}"
        out = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "400"}).output
        assert out.rstrip().splitlines()[-1].strip() == example, f"{name} {cmd} --help does not end with it"
        args = shlex.split(example.removeprefix("Example: "))[2:]
        click_cmd.make_context(f"{name} {cmd}", args)  # raises on an unknown option or a missing required one
