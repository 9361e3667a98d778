"""data_scripts.make_scoring_file: the demo's fresh file holds only rows after the model's history, and its
broken rows are exactly the ones `fraud score` must reject."""

import numpy as np
import pandas as pd

from data_scripts.make_scoring_file import scoring_frame
from fraud.data.mapping import ColumnMapping
from fraud.data.row_checks import SeenIds, check_rows


def _canonical(n=60):
    t = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"transaction_id": pd.array([f"t{i}" for i in range(n)], dtype="string"), "timestamp": t,
                         "source": pd.array([f"c{i % 7}" for i in range(n)], dtype="string"),
                         "target": pd.array([f"m{i % 5}" for i in range(n)], dtype="string"),
                         "amount": np.linspace(1, 100, n), "label": (np.arange(n) % 11 == 0).astype(np.int8)})


def test_only_later_rows_and_exactly_the_broken_ones_are_rejected():
    df = _canonical()
    after = int(df["timestamp"].iloc[40].value)
    out, labels = scoring_frame(df, after, broken=3, seed=0)
    assert len(out) == 20 and len(labels) == 20 and "label" not in out.columns
    canon, rej = check_rows(out.astype(str), ColumnMapping(), SeenIds(), list(out.columns))
    assert len(rej) == 3 and len(canon) + len(rej) == len(out)
    assert canon["timestamp"].min().value >= after
    again, _ = scoring_frame(df, after, broken=3, seed=0)
    pd.testing.assert_frame_equal(out, again)  # same seed, same file
