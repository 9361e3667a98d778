"""Loading users' files into the canonical frame: every preset on a sample in its exact public format,
mappings from flags and YAML, per-row rejects with reasons (read = kept + rejected), whole-file errors, and the
in-memory validator."""

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fraud.data.frame import SchemaError, validate
from fraud.data.load import load_transactions, read_transactions
from shared.tabular import TabularError

PAYSIM_HEADER = ("step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,"
                 "isFraud,isFlaggedFraud")
SPARKOV_HEADER = ("trans_date_trans_time|cc_num|merchant|category|amt|first|last|gender|street|city|state|zip|lat|"
                  "long|city_pop|job|dob|trans_num|unix_time|merch_lat|merch_long|is_fraud")
AML_HEADER = ("Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
              "Payment Currency,Payment Format,Is Laundering")


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_paysim(tmp_path):
    p = write(tmp_path, "paysim.csv", [
        PAYSIM_HEADER,
        "1,PAYMENT,9839.64,C1231006815,170136.0,160296.36,M1979787155,0.0,0.0,0,0",
        "1,TRANSFER,181.0,C1305486145,181.0,0.0,C553264065,0.0,0.0,1,0",
        "2,CASH_OUT,229133.94,C905080434,15325.0,0.0,C476402209,5083.0,51513.44,0,0",
        "743,CASH_OUT,850002.52,C1280323807,850002.52,0.0,C873221189,6510099.11,7360101.63,1,0"])
    df, rej = load_transactions(p, preset="paysim")
    validate(df, require_sorted=True)
    assert len(rej) == 0 and len(df) == 4
    assert df["transaction_id"].tolist() == ["1", "2", "3", "4"]  # no id column: the data row number
    assert df["timestamp"].tolist() == [pd.Timestamp("2024-01-01 00:00", tz="UTC")] * 2 + [
        pd.Timestamp("2024-01-01 01:00", tz="UTC"), pd.Timestamp("2024-01-31 22:00", tz="UTC")]
    assert df["source"].tolist()[:2] == ["C1231006815", "C1305486145"] and df["target"].iloc[0] == "M1979787155"
    assert df["amount"].tolist() == [9839.64, 181.0, 229133.94, 850002.52]
    assert df["label"].tolist() == [0, 1, 0, 1] and df["label"].dtype == np.int8
    assert df["type"].tolist() == ["PAYMENT", "TRANSFER", "CASH_OUT", "CASH_OUT"]
    assert df["oldbalanceOrg"].dtype == np.float64


def test_sparkov_pipe_separated(tmp_path):
    p = write(tmp_path, "sparkov.csv", [
        SPARKOV_HEADER,
        "2019-01-01 00:00:18|2703186189652095|fraud_Rippin, Kub and Mann|misc_net|4.97|Jennifer|Banks|F|561 Perry "
        "Cove|Moravian Falls|NC|28654|36.0788|-81.1781|3495|Psychologist, counselling|1988-03-09|"
        "0b242abb623afc578575680df30655b9|1325376018|36.011293|-82.048315|0",
        "2019-01-01 00:00:44|630423337322|fraud_Heller, Gutmann and Zieme|grocery_pos|107.23|Stephanie|Gill|F|43039 "
        "Riley Greens Suite 393|Orient|WA|99160|48.8878|-118.2105|149|Special educational needs teacher|1978-06-21|"
        "1f76529f8574734946361c461b024d99|1325376044|49.159047|-118.186462|1"])
    df, rej = load_transactions(p, preset="sparkov")
    validate(df, require_sorted=True)
    assert len(rej) == 0
    assert df["transaction_id"].tolist() == ["0b242abb623afc578575680df30655b9", "1f76529f8574734946361c461b024d99"]
    assert df["source"].tolist() == ["2703186189652095", "630423337322"]  # card numbers stay exact text
    assert df["target"].iloc[0] == "fraud_Rippin, Kub and Mann"
    assert df["timestamp"].iloc[0] == pd.Timestamp(1325376018, unit="s", tz="UTC")
    assert df["amount"].tolist() == [4.97, 107.23] and df["label"].tolist() == [0, 1]
    assert df["category"].tolist() == ["misc_net", "grocery_pos"]


def test_amlworld_duplicate_account_header(tmp_path):
    p = write(tmp_path, "HI-Small_Trans.csv", [
        AML_HEADER,
        "2022/09/01 00:20,010,8000EBD30,010,8000EBD30,3697.34,US Dollar,3697.34,US Dollar,Reinvestment,0",
        "2022/09/01 00:15,03208,8000F4580,001,8000F5340,0.01,US Dollar,0.01,US Dollar,Cheque,0",
        "2022/09/01 00:23,001120,8006AD080,0021174,800A2C2F0,14675.57,Euro,14675.57,Euro,ACH,1"])
    df, rej = load_transactions(p, preset="amlworld")
    validate(df, require_sorted=True)
    assert len(rej) == 0
    # Sorted by time (row 2 is earliest); ids are the file's data row numbers; bank codes keep leading zeros.
    assert df["transaction_id"].tolist() == ["2", "1", "3"]
    assert df["source"].tolist() == ["03208:8000F4580", "010:8000EBD30", "001120:8006AD080"]
    assert df["target"].tolist() == ["001:8000F5340", "010:8000EBD30", "0021174:800A2C2F0"]
    assert df["timestamp"].iloc[0] == pd.Timestamp("2022-09-01 00:15", tz="UTC")
    assert df["label"].tolist() == [0, 0, 1] and df["Payment Format"].tolist() == ["Cheque", "Reinvestment", "ACH"]


def test_own_format_round_trip_keeps_extras(tmp_path):
    from data_scripts.make_transactions import TransactionConfig, generate

    gen = generate(TransactionConfig(n_customers=150, n_merchants=25, days=8, seed=2))
    for name in ("own.csv", "own.parquet"):
        from shared.tabular import write_table

        write_table(gen, tmp_path / name)
        df, rej = load_transactions(tmp_path / name)
        assert len(rej) == 0
        pd.testing.assert_frame_equal(df, gen, check_dtype=False)
        validate(df, require_sorted=True)


def test_mapping_from_dict_and_yaml(tmp_path):
    p = write(tmp_path, "bank.csv", ["id;when;payer;payee;value;fraud",
                                     "a1;2024-03-01T10:00:00+01:00;acc1;acc2;12,5;no",
                                     "a2;2024-03-01T08:00:00Z;acc2;acc3;7;yes"])
    cols = {"transaction_id": "id", "timestamp": "when", "source": "payer", "target": "payee", "amount": "value",
            "label": "fraud"}
    df, rej = load_transactions(p, mapping=cols)
    assert df["transaction_id"].tolist() == ["a2"] and df["label"].tolist() == [1]  # a1 has a comma decimal
    assert rej["row"].tolist() == [1] and "amount is not a number (value '12,5')" in rej["reason"].iloc[0]
    yml = tmp_path / "map.yaml"
    yml.write_text("columns:\n  id: id\n  timestamp: when\n  source: payer\n  target: payee\n  amount: value\n",
                   encoding="utf-8")
    df, _ = load_transactions(p, mapping=yml)
    assert "label" not in df.columns and df["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 08:00", tz="UTC")
    yml.write_text("preset: paysim\namont: x\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="did you mean 'amount'"):
        load_transactions(p, mapping=yml)
    with pytest.raises(SchemaError, match="did you mean 'paysim'"):
        load_transactions(p, preset="paysym")


def test_missing_columns_list_what_is_missing_and_what_is_there(tmp_path):
    p = write(tmp_path, "tx.csv", ["transaction_id,timestamp,src,target,amt", "t1,2024-01-01,a,b,1"])
    with pytest.raises(SchemaError) as err:
        load_transactions(p)
    msg = str(err.value)
    assert "'source' (source" in msg and "'amount' (amount" in msg and "did you mean 'amt'" in msg
    assert "it has columns ['transaction_id', 'timestamp', 'src', 'target', 'amt']" in msg
    assert "--col-" in msg and "--preset" in msg
    with pytest.raises(SchemaError, match="'isFraud' \\(label"):  # a label column named explicitly must exist
        load_transactions(write(tmp_path, "p.csv", ["step,amount,nameOrig,nameDest", "1,2,a,b"]), preset="paysim",
                          mapping={"label": "isFraud"})


def test_bad_rows_go_to_rejects_with_row_numbers_and_reasons(tmp_path):
    p = write(tmp_path, "tx.csv", [
        "transaction_id,timestamp,source,target,amount,label",
        "t1,2024-01-01 10:00,a,b,10.5,0",       # 1 ok
        "t2,yesterday,a,b,3,0",                 # 2 bad time
        "t3,2024-01-01 11:00,a,b,abc,0",        # 3 bad amount
        "t4,2024-01-01 12:00,a,b,-4,0",         # 4 negative
        "t5,2024-01-01 12:00,a,b,NaN,1",        # 5 NaN
        "t6,2024-01-01 12:00,a,b,,1",           # 6 empty amount
        "t1,2024-01-02 09:00,c,d,1,0",          # 7 duplicate id of row 1
        "t8,2024-01-01 09:00,,d,1,maybe",       # 8 no source and a bad label
        "t9,2024-01-01 08:00,c,d,inf,0",        # 9 infinite
        "t10,2024-01-01 07:00,c,d,2,1"])        # 10 ok, earliest
    loaded = read_transactions(p, rejects_path=tmp_path / "rej.csv", chunk_rows=3)  # duplicates across chunks
    df, rej, rep = loaded.frame, loaded.rejects, loaded.report
    assert rep.rows_read == 10 == rep.kept + rep.rejected and rep.kept == 2
    assert df["transaction_id"].tolist() == ["t10", "t1"]  # sorted by time
    why = dict(zip(rej["row"], rej["reason"], strict=True))
    assert why[2] == "timestamp is not a date/time (value 'yesterday')"
    assert why[3] == "amount is not a number (value 'abc')"
    assert why[4] == "amount is negative (value '-4')"
    assert why[5] == "amount is NaN" and why[6] == "amount is missing" and why[9] == "amount is infinite"
    assert why[7] == "duplicate transaction_id (value 't1', first in row 1)"
    assert why[8] == "source is missing; label is not 0 or 1 (value 'maybe')"
    assert rej.loc[rej["row"] == 3, "amount"].item() == "abc"  # original values kept as text
    on_disk = pd.read_csv(tmp_path / "rej.csv")
    assert on_disk["row"].tolist() == rej["row"].tolist()
    assert rep.problems["amount is negative"] == 1 and sum(rep.problems.values()) == 9


def test_every_row_rejected_still_adds_up(tmp_path):
    p = write(tmp_path, "tx.csv", ["transaction_id,timestamp,source,target,amount", "t1,nope,a,b,1",
                                   "t2,never,a,b,2"])
    df, rej = load_transactions(p)
    assert len(df) == 0 and len(rej) == 2 and list(df.columns[:5]) == ["transaction_id", "timestamp", "source",
                                                                      "target", "amount"]


def test_empty_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(TabularError, match="empty"):
        load_transactions(empty)
    header = write(tmp_path, "header.csv", ["transaction_id,timestamp,source,target,amount"])
    with pytest.raises(SchemaError, match="no data rows"):
        load_transactions(header)


def test_validate_names_each_problem():
    from data_scripts.make_transactions import TransactionConfig, generate

    df = generate(TransactionConfig(n_customers=120, n_merchants=20, days=7, seed=0))
    validate(df, require_sorted=True)
    bad = df.copy()
    bad["transaction_id"] = bad["transaction_id"].astype(object)
    bad.loc[5, "amount"] = -1.0
    bad.loc[9, "transaction_id"] = bad.loc[8, "transaction_id"]
    bad["timestamp"] = bad["timestamp"].dt.tz_localize(None)
    with pytest.raises(SchemaError) as err:
        validate(bad, where="my frame")
    msg = str(err.value)
    for part in ("my frame", "string dtype", "duplicate transaction_id 'T8' at positions 8 and 9",
                 "amount is negative in 1 row(s), first at position 5", "UTC datetime"):
        assert part in msg, part
    shuffled = df.iloc[::-1].reset_index(drop=True)
    validate(shuffled)  # attacked or merged frames may be out of order
    with pytest.raises(SchemaError, match="not in time order"):
        validate(shuffled, require_sorted=True)
    with pytest.raises(SchemaError, match="lacks column"):
        validate(df.drop(columns=["amount"]))
    bad = df.copy()
    bad.loc[0, "typology"] = "mule_ring"
    with pytest.raises(SchemaError, match="label 0 name a typology"):
        validate(bad)


def test_cli_convert_writes_canonical_rejects_and_summary(tmp_path):
    from fraud.cli import app

    p = write(tmp_path, "paysim.csv", [PAYSIM_HEADER, "1,PAYMENT,10.0,C1,0,0,M1,0,0,0,0",
                                       "2,PAYMENT,-3,C2,0,0,M1,0,0,0,0"])
    res = CliRunner().invoke(app, ["convert", "-i", str(p), "-o", str(tmp_path / "out.parquet"), "--preset",
                                   "paysim"])
    assert res.exit_code == 0, res.output
    for pattern in (r"rows read\s+2\b", r"kept\s+1\n", r"rejected\s+1\n"):
        assert re.search(pattern, res.output), (pattern, res.output)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["source"].tolist() == ["C1"]
    rej = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rej["row"].tolist() == [2] and rej["reason"].tolist() == ["amount is negative (value '-3')"]
    res = CliRunner().invoke(app, ["convert", "-i", str(p), "-o", str(tmp_path / "x.csv"), "--col-source",
                                   "payer"])
    assert res.exit_code == 2 and "'payer' (source" in res.output
