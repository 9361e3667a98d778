"""Every command of both CLIs has real help text, and `--help` stays fast (no heavy imports)."""

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
