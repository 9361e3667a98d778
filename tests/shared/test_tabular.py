import numpy as np
import pandas as pd
import pytest

from shared.tabular import TableWriter, TabularError, iter_chunks, read_table, sniff_delimiter, write_table


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 1000
    return pd.DataFrame({"id": np.arange(n), "amount": rng.gamma(2, 30, n).round(2),
                         "who": [f"c{i % 17}" for i in range(n)]})


@pytest.mark.parametrize("sep", [",", ";", "|", "\t"])
def test_csv_delimiter_is_sniffed(tmp_path, frame, sep):
    p = tmp_path / "t.csv"
    frame.to_csv(p, sep=sep, index=False)
    assert sniff_delimiter(p) == sep
    pd.testing.assert_frame_equal(read_table(p), frame)


def test_sparkov_style_pipe_file(tmp_path):
    p = tmp_path / "fraudTest.csv"
    p.write_text("cc_num|merchant|amt|is_fraud\n4242|fraud_Kirlin|12.5|0\n4243|fraud_Sporer, Inc|3.2|1\n")
    df = read_table(p)
    assert list(df.columns) == ["cc_num", "merchant", "amt", "is_fraud"]
    assert df["merchant"].tolist() == ["fraud_Kirlin", "fraud_Sporer, Inc"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunked_read_equals_whole_read(tmp_path, frame, suffix):
    p = write_table(frame, tmp_path / f"t{suffix}")
    chunks = list(iter_chunks(p, chunk_rows=128))
    assert len(chunks) == 8 and all(len(c) <= 128 for c in chunks)
    joined = pd.concat(chunks)
    assert joined.index.tolist() == list(range(len(frame)))
    pd.testing.assert_frame_equal(joined.reset_index(drop=True), read_table(p))
    pd.testing.assert_frame_equal(read_table(p), frame)


def test_column_selection_and_missing_column(tmp_path, frame):
    p = write_table(frame, tmp_path / "t.parquet")
    assert list(read_table(p, columns=["amount"]).columns) == ["amount"]
    with pytest.raises(TabularError, match="has no column.*'nope'"):
        read_table(p, columns=["nope"])


def test_missing_empty_and_unreadable_files(tmp_path):
    with pytest.raises(TabularError, match="does not exist"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TabularError, match="is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(TabularError, match="not a readable Parquet file"):
        read_table(tmp_path / "junk.parquet")
    (tmp_path / "latin.csv").write_bytes("a,b\n\xe9t\xe9,1\n".encode("latin-1"))
    with pytest.raises(TabularError, match="UTF-8"):
        read_table(tmp_path / "latin.csv")
    with pytest.raises(TabularError, match="unknown table format"):
        read_table(tmp_path / "data.xlsx")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_writer_appends_chunks(tmp_path, frame, suffix):
    p = tmp_path / f"out{suffix}"
    with TableWriter(p) as w:
        for chunk in iter_chunks(write_table(frame, tmp_path / f"in{suffix}"), chunk_rows=300):
            w.write(chunk)
    assert w.rows == len(frame)
    pd.testing.assert_frame_equal(read_table(p), frame)


def test_prefetch_keeps_order_raises_where_the_source_failed_and_stops_early():
    import threading

    from shared.tabular import prefetch

    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise TabularError("bad row 3 in x.csv")

    got = []
    with pytest.raises(TabularError, match="bad row 3"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1, 2]  # everything before the failure arrives first

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetch(endless()):
        if item == 3:
            break
    assert not any(t.name == "prefetch" for t in threading.enumerate())  # the producer has stopped
    assert len(produced) <= 6  # at most a couple of items beyond what was consumed
