"""The first mistakes a new user makes end in one clear message that says what to type instead (exit 2, no
traceback): a misspelt preset, a file whose columns do not match, a data.yaml whose relative paths do not
resolve."""

import re

import pytest
from typer.testing import CliRunner

from detection.cli import app as detection_app
from fraud.cli import app as fraud_app
from fraud.data.load import load_transactions
from tests.fixtures.toy_scenes import make_toy_scenes

runner = CliRunner()


def _fails_cleanly(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich/typer may wrap lines


@pytest.fixture
def bank_csv(tmp_path):
    p = tmp_path / "bank.csv"
    p.write_text("id,ts,src,dst,amt\n1,2024-01-01T10:00:00,a,b,3.5\n2,2024-01-01T11:00:00,b,c,4\n")
    return p


@pytest.mark.parametrize("command", ["train", "convert"])
def test_wrong_fraud_preset_lists_the_valid_ones_and_suggests_the_closest(command, bank_csv, tmp_path):
    args = (["train", "--data", str(bank_csv)] if command == "train"
            else ["convert", "--input", str(bank_csv), "--out", str(tmp_path / "o.parquet")])
    msg = _fails_cleanly(runner.invoke(fraud_app, [*args, "--preset", "paysm"]))
    assert "unknown preset 'paysm'; did you mean 'paysim'?" in msg
    assert "own, paysim, sparkov, amlworld" in msg


def test_wrong_detection_preset_lists_the_valid_ones_and_suggests_the_closest(tmp_path):
    data = make_toy_scenes(tmp_path / "toy", n_train=2, n_val=1, width=64, height=64)
    msg = _fails_cleanly(runner.invoke(detection_app, ["train", "--data", str(data), "--preset", "roadd"]))
    assert "did you mean 'road'?" in msg and "none, light, road, road-strong, road-seg" in msg


def test_missing_columns_name_them_and_give_a_mapping_that_works(bank_csv, tmp_path):
    r = runner.invoke(fraud_app, ["train", "--data", str(bank_csv)])
    msg = _fails_cleanly(r)
    assert "lacks column(s) 'timestamp' (timestamp)" in msg and "'amount' (amount, did you mean 'amt'?)" in msg
    assert "--mapping mapping.yaml" in msg
    # The suggested file, copied as printed, loads the file.
    text = r.output.replace("\r", "")
    yaml_text = re.search(r"mapping\.yaml:\n(columns:\n(?:  .*\n)+)", text).group(1)
    assert "  timestamp: ts\n" in yaml_text and "  transaction_id: id\n" in yaml_text
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml_text)
    df, rejects = load_transactions(bank_csv, mapping=mapping)
    assert len(df) == 2 and len(rejects) == 0 and df["amount"].tolist() == [3.5, 4.0]


def test_columns_of_a_known_data_set_suggest_its_preset(tmp_path):
    p = tmp_path / "paysim.csv"
    p.write_text("step,type,amount,nameOrig,nameDest,isFraud\n1,PAYMENT,9.5,C1,M2,0\n")
    msg = _fails_cleanly(runner.invoke(fraud_app, ["train", "--data", str(p)]))
    assert "These columns fit a preset: add --preset paysim." in msg


def test_data_yaml_split_that_does_not_resolve_names_the_base_and_what_to_write(tmp_path, monkeypatch):
    make_toy_scenes(tmp_path / "set", n_train=2, n_val=1, width=64, height=64)
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    bad = elsewhere / "data.yaml"  # no `path:`: splits resolve against configs/, but the images are in set/
    bad.write_text("train: set/images/train\nval: set/images/val\nnames: [car, truck, pedestrian, cyclist, "
                   "traffic_light, stop_sign]\n")
    monkeypatch.chdir(tmp_path)
    msg = _fails_cleanly(runner.invoke(detection_app, ["train", "--data", str(bad)]))
    assert f"resolved against the yaml's folder {elsewhere} (data.yaml has no `path:`)" in msg
    assert f"write `train: {tmp_path / 'set/images/train'}` (absolute), or set `path: {tmp_path}`" in msg


def test_data_yaml_relative_root_that_exists_nowhere_says_where_it_looked(tmp_path, monkeypatch):
    make_toy_scenes(tmp_path / "set", n_train=2, n_val=1, width=64, height=64)
    bad = tmp_path / "set" / "moved.yaml"
    bad.write_text("path: ../datasets/set\ntrain: images/train\nval: images/val\nnames: [car]\n")
    monkeypatch.chdir(tmp_path)
    msg = _fails_cleanly(runner.invoke(detection_app, ["train", "--data", str(bad)]))
    assert f"neither {tmp_path / '../datasets/set'} (from the working directory" in msg
    assert f"`path: {tmp_path / 'set'}`" in msg
