"""fraud score: every row scored or rejected, chunk-size invariance (ties split too), order checks, CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fraud.serve.scoring import ScoreError, ScoreOptions, column_mapping, score_file
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


def _file_frame(n=240) -> pd.DataFrame:
    """Later rows as a user file: text timestamps, a few timestamp ties placed where chunks split."""
    _, _, later = tiny_model()
    df = later.iloc[:n].copy()
    t = df["timestamp"].to_numpy().copy()
    for i in (i for i in (50, 51, 100, 161) if i < n):  # 49..51 share a time (3-way tie); 99/100; 160/161
        t[i] = t[i - 1]
    df["timestamp"] = t
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return df


def _score(src, out, **kw):
    model, _, _ = tiny_model()
    opts = ScoreOptions(progress=False, **kw)
    return score_file(model, src, out, options=opts)


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("score") / "tx.csv"
    _file_frame().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("chunk", [7, 50, 100, 160])
def test_same_row_same_score_whole_or_in_chunks(csv_file, tmp_path, chunk):
    whole = _score(csv_file, tmp_path / "whole.csv", chunk_rows=None)
    parts = _score(csv_file, tmp_path / "parts.csv", chunk_rows=chunk)
    a, b = pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(tmp_path / "parts.csv")
    pd.testing.assert_frame_equal(a, b)  # bit-identical probabilities, same reasons, same order
    assert whole.rows_read == parts.rows_read == whole.scored == len(a) == 240
    assert whole.flagged == parts.flagged == int(a["flag"].sum())


def test_scores_match_the_model_and_output_columns(csv_file, tmp_path):
    model, _, later = tiny_model()
    _score(csv_file, tmp_path / "o.csv")
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out.columns) == ["transaction_id", "probability", "flag", "reason_1", "reason_2", "reason_3"]
    expect = model.stream().score(_canonical(_file_frame()))
    np.testing.assert_allclose(out["probability"], expect["probability"], rtol=1e-12)
    assert (out["flag"] == (out["probability"] > model.threshold_)).all()
    assert out.loc[out["flag"], "reason_1"].notna().all()  # a flagged row says what raised its score
    assert not out["reason_1"].fillna("").str.contains("_").any()  # human phrases, not column names


def _canonical(df):
    df = df.copy()
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def test_every_row_is_scored_or_rejected_with_reason_and_row_number(tmp_path):
    df = _file_frame(60).astype({"amount": "object"})
    df.loc[3, "amount"] = -5.0
    df.loc[7, "timestamp"] = "not a time"
    df.loc[9, "transaction_id"] = df.loc[8, "transaction_id"]
    df.loc[11, "source"] = None
    df.loc[13, "amount"] = "abc"
    df.loc[15, "amount"] = None
    src = tmp_path / "bad.csv"
    df.to_csv(src, index=False)
    s = _score(src, tmp_path / "o.csv", chunk_rows=8)
    out = pd.read_csv(tmp_path / "o.csv")
    rej = pd.read_csv(tmp_path / "o.rejects.csv")
    assert s.rows_read == 60 == s.scored + s.rejected and s.rejected == 6
    assert list(rej["row"]) == [4, 8, 10, 12, 14, 16]  # 1-based data rows
    reasons = dict(zip(rej["row"], rej["reason"], strict=True))
    assert "negative" in reasons[4] and "date/time" in reasons[8] and "duplicate" in reasons[10]
    assert "source is missing" in reasons[12] and "not a number" in reasons[14] and "missing" in reasons[16]
    kept = df.drop(index=[3, 7, 9, 11, 13, 15])["transaction_id"].tolist()
    assert out["transaction_id"].tolist() == kept  # input order, nothing lost
    assert set(out["transaction_id"]).isdisjoint(set(rej["transaction_id"]) - {df.loc[8, "transaction_id"]})


def test_parquet_in_parquet_out_equals_csv(csv_file, tmp_path):
    pq = tmp_path / "tx.parquet"
    _canonical(pd.read_csv(csv_file)).to_parquet(pq, index=False)
    _score(pq, tmp_path / "o.parquet", chunk_rows=64)
    _score(csv_file, tmp_path / "o.csv")
    a, b = pd.read_parquet(tmp_path / "o.parquet"), pd.read_csv(tmp_path / "o.csv")
    np.testing.assert_array_equal(a["probability"].to_numpy(), b["probability"].to_numpy())
    assert (tmp_path / "o.rejects.parquet").is_file() and len(pd.read_parquet(tmp_path / "o.rejects.parquet")) == 0


def test_unsorted_file_is_refused_naming_the_row_or_sorted_on_request(csv_file, tmp_path):
    df = pd.read_csv(csv_file)
    shuffled = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    src = tmp_path / "shuffled.csv"
    shuffled.to_csv(src, index=False)
    with pytest.raises(ScoreError, match=r"not in event order: row [\d,]+ .* --sort"):
        _score(src, tmp_path / "x.csv", chunk_rows=50)
    assert not (tmp_path / "x.csv").exists()  # no half-written output
    _score(src, tmp_path / "sorted.csv", sort=True, chunk_rows=37)
    _score(csv_file, tmp_path / "ref.csv")
    got = pd.read_csv(tmp_path / "sorted.csv")
    ref = pd.read_csv(tmp_path / "ref.csv").set_index("transaction_id")
    assert got["transaction_id"].tolist() == shuffled["transaction_id"].tolist()  # file order kept
    # Ties keep their file order under a stable sort; no tie partner sees the other, so scores agree.
    np.testing.assert_array_equal(got["probability"].to_numpy(),
                                  ref.loc[got["transaction_id"], "probability"].to_numpy())


def test_mapped_columns_and_missing_column_error(csv_file, tmp_path):
    df = pd.read_csv(csv_file).rename(columns={"amount": "amt", "source": "cc_num", "transaction_id": "id"})
    src = tmp_path / "mapped.csv"
    df.to_csv(src, index=False)
    model, _, _ = tiny_model()
    with pytest.raises(ScoreError, match=r"lacks transaction_id \(column 'transaction_id'\).*amount.*it has"):
        score_file(model, src, tmp_path / "o.csv", options=ScoreOptions(progress=False))
    mapping = column_mapping({"amount": "amt"}, transaction_id="id", source="cc_num")
    score_file(model, src, tmp_path / "o.csv", mapping=mapping, options=ScoreOptions(progress=False, keep=["amt"]))
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out.columns[:3]) == ["id", "amt", "probability"]
    _score(csv_file, tmp_path / "ref.csv")
    np.testing.assert_array_equal(out["probability"], pd.read_csv(tmp_path / "ref.csv")["probability"])


def test_reason_modes(csv_file, tmp_path):
    _score(csv_file, tmp_path / "f.csv", reasons="flagged")
    _score(csv_file, tmp_path / "n.csv", reasons="none")
    _score(csv_file, tmp_path / "a.csv", reasons="exact")
    f, n, a = (pd.read_csv(tmp_path / f"{k}.csv") for k in "fna")
    assert "reason_1" not in n.columns
    assert f.loc[~f["flag"], "reason_1"].isna().all()
    pd.testing.assert_series_equal(f.loc[f["flag"], "reason_1"], a.loc[a["flag"], "reason_1"])


def test_cli_score_prints_summary_and_writes_drift(csv_file, tmp_path):
    from fraud.cli import app

    _, run, _ = tiny_model()
    out = tmp_path / "scored.csv"
    r = CliRunner().invoke(app, ["score", "--model", str(run), "--input", str(csv_file), "--output", str(out),
                                 "--chunk-rows", "64", "--show", "2"])
    assert r.exit_code == 0, r.output
    assert "rows read" in r.output and "rows/s" in r.output and "flagged" in r.output
    assert "(features " in r.output and "reasons " in r.output  # where the time went
    q = CliRunner().invoke(app, ["score", "--model", str(run), "--input", str(csv_file), "--output", str(out),
                                 "--quiet"])
    assert q.exit_code == 0, q.output
    line = q.output.strip().splitlines()[0]  # then drift warnings, if any (at most 3 and a pointer)
    assert line.startswith("scored ") and "flagged" in line and "rejected 0" in line and "rows read" not in q.output
    drift = json.loads((tmp_path / "scored.drift.json").read_text())
    assert set(drift["psi"]) == set(tiny_model()[0].feature_names_)
    bad = CliRunner().invoke(app, ["score", "--model", str(run), "--input", str(tmp_path / "none.csv"),
                                   "--output", str(out), "--quiet"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_rows_scored_one_by_one_reuse_snapshots_and_match_the_whole_file_exactly():
    """The service's path: one transaction at a time, later rows of an hour reuse its cached snapshot."""
    from fraud.serve.scoring import ChunkScorer

    model, _, later = tiny_model()
    rows = later.iloc[:60].reset_index(drop=True)
    whole = ChunkScorer(model, model.history_.copy(), ScoreOptions(reasons="none", progress=False))
    _, expect = whole.score(rows)
    one = ChunkScorer(model, model.history_.copy(), ScoreOptions(reasons="none", progress=False))
    got = pd.concat([one.score(rows.iloc[i:i + 1])[1] for i in range(len(rows))])
    np.testing.assert_array_equal(got["probability"].to_numpy(), expect["probability"].to_numpy())
    assert one.scorer.graph_cache.hits > 30  # most rows found their snapshot already cut and encoded
