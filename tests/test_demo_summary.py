"""The demo summary reports what the stages wrote, says which stages left nothing, and links every report."""

import json

from benchmarks.demo_summary import write_summary


def test_summary_reads_the_files_and_names_missing_stages(tmp_path):
    model = tmp_path / "fraud" / "model"
    model.mkdir(parents=True)
    (model / "manifest.json").write_text(json.dumps({"metrics": {"test": {
        "rows": 1200, "frauds": 30, "pr_auc": 0.4567, "recall_at_1pct_fpr": 0.25}}}))
    scoring = tmp_path / "fraud" / "scoring"
    scoring.mkdir()
    (scoring / "scored.csv").write_text("transaction_id,probability,flag\na,0.9,True\nb,0.1,False\nc,0.2,False\n")
    (scoring / "scored.rejects.csv").write_text("row,reason\n4,amount is not a number\n")
    (tmp_path / "fraud" / "model" / "log.txt").write_text("library chatter\n")
    lines, path = write_summary(tmp_path, seed=7)
    text = "\n".join(lines)
    assert "PR-AUC 0.457, recall 0.250 at 1% FPR" in text
    assert "4 rows read, 3 scored, 1 flagged, 1 rejected" in text
    assert "(no detection results found)" in text, "a stage that wrote nothing is said to be missing"
    md = path.read_text()
    assert "Seed 7" in md and "benchmarks/" in md
    assert "[fraud/model/log.txt](fraud/model/log.txt)" in md and "[fraud/scoring/scored.csv]" in md


def test_summary_counts_every_drift_warning_and_gives_the_recall_on_confirmed_fraud(tmp_path):
    scoring = tmp_path / "fraud" / "scoring"
    scoring.mkdir(parents=True)
    (scoring / "scored.csv").write_text("transaction_id,probability,flag\na,0.9,True\nb,0.1,False\n")
    rec = {"flagged": True, "recall": 0.05, "reference_recall": 0.6, "confirmed": 40, "threshold": 0.5}
    (scoring / "scored.drift.json").write_text(json.dumps({
        "drifted": [], "embeddings": {}, "features": {}, "unseen_drifted": [], "thresholds": {},
        "model_output": {"confirmed_fraud_recall": rec}}))
    text = "\n".join(write_summary(tmp_path, seed=0)[0])
    assert "drift: 1 warning(s)" in text, "a warning on the confirmed frauds counts like one on an input"
    assert "flagged 5.0 % of its 40 confirmed frauds (60.0 % in the validation period)" in text
