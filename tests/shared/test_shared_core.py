import os
import subprocess
import sys

import numpy as np
import pytest

from shared.reporting import markdown_table, text_table, write_json
from shared.seeding import seed_everything


def test_shared_imports_without_heavy_packages():
    code = ("import sys, shared.config, shared.runs, shared.tabular, shared.reporting, shared.seeding, "
            "shared.offline, shared.cli_common\n"
            "heavy = [m for m in ('torch', 'ultralytics', 'xgboost', 'torch_geometric') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_offline_environment_set_before_ultralytics_import(tmp_path):
    code = ("import os, sys\n"
            "from shared.offline import yolo\n"
            "u = yolo()\n"
            "assert os.environ['YOLO_OFFLINE'] == '1' and os.environ['YOLO_AUTOINSTALL'] == 'False'\n"
            "cfg = os.environ['YOLO_CONFIG_DIR']\n"
            "assert cfg.startswith(os.environ['DLCS_CACHE_DIR']), cfg\n"
            "assert os.path.getsize(os.path.join(cfg, 'Ultralytics', 'Arial.ttf')) > 100_000\n"
            "from ultralytics.utils import SETTINGS\n"
            "assert SETTINGS['sync'] is False and SETTINGS['runs_dir'].startswith(os.environ['DLCS_RUNS_DIR'])\n")
    env = dict(os.environ, DLCS_CACHE_DIR=str(tmp_path), HOME=str(tmp_path / "home"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not (tmp_path / "home" / ".config" / "Ultralytics").exists()


def test_importing_ultralytics_first_is_refused(tmp_path):
    code = "import ultralytics\nfrom shared.offline import configure_offline\nconfigure_offline()"
    env = dict(os.environ, DLCS_CACHE_DIR=str(tmp_path), YOLO_CONFIG_DIR=str(tmp_path / "elsewhere"))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "imported before" in r.stderr


def test_seed_gives_same_numbers():
    a = seed_everything(5).normal(size=3)
    b = seed_everything(5).normal(size=3)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(-1)


def test_tables_and_json(tmp_path):
    rows = [{"model": "xgb", "pr_auc": 0.51234, "n": 3}, {"model": "gnn", "pr_auc": float("nan"), "n": 4}]
    md = markdown_table(rows)
    assert md.splitlines()[0] == "| model | pr_auc | n |" and "0.5123" in md and "—" in md
    assert "xgb" in text_table(rows)
    p = write_json({"x": np.float32(0.5), "y": float("inf")}, tmp_path / "m.json")
    assert p.read_text().replace(" ", "").replace("\n", "") == '{"x":0.5,"y":null}'


@pytest.mark.parametrize("cli", ["fraud", "detection"])
def test_console_scripts_have_help(cli):
    exe = os.path.join(os.path.dirname(sys.executable), cli)
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "Usage" in r.stdout and "info" in r.stdout
