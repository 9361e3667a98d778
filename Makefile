# The two README commands: `make demo` and `make test`. Both create .venv when missing and reuse it after.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEED ?= 0
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo demo-full test lint install clean

# A from-scratch schedule for a few hundred CPU seconds (docs/detection-transfer.md, "scratch-tuned"): every
# batch an optimizer step, AdamW with cosine decay, short warm-up.
SHORT_SCHEDULE := --set train.optimizer=AdamW --set train.lr0=0.0015 --set train.nominal_batch=16 \
	--set train.cos_lr=true --set train.warmup_epochs=1 --set train.close_mosaic=2

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project metadata changes: a second run is fast.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole case study on small generated data, quietly: every command prints one line (a progress bar on a
# terminal while it works), library output goes to log.txt in each run folder, and the last step prints the
# headline figures and writes $(DEMO)/summary.md linking every report and figure. Each line is a real CLI
# command a user can run alone. `make demo` is sized for a few minutes on 2 CPU cores; `make demo-full` runs
# larger data and longer training into runs/demo-full. Both are demo-sized and undertrained on purpose: the
# measured figures come from benchmarks/. Re-running either replaces its earlier outputs.
demo: DEMO := runs/demo
demo: FRAUD_DATA := --rows 20000 --days 30
demo: SCENES := --n-train 200 --n-val 60 --n-pool 80 --width 320 --height 192
demo: DET := --epochs 12 --imgsz 192 $(SHORT_SCHEDULE)
demo: MINE := --epochs 2 --set mine.finetune.imgsz=192 --set mine.finetune.nominal_batch=16
demo: EXPORT := --imgsz 192 --calib-images 16 --parity-images 20
demo: VIDEO := --frames 60 --width 320 --height 192
demo-full: DEMO := runs/demo-full
demo-full: FRAUD_DATA := --size demo
demo-full: SCENES := --n-train 300 --n-val 60 --n-pool 150
demo-full: DET := --epochs 15 --imgsz 256 $(SHORT_SCHEDULE)
demo-full: MINE := --epochs 3 --set mine.finetune.nominal_batch=16
demo-full: EXPORT := --imgsz 256 --calib-images 32 --parity-images 30
demo-full: VIDEO := --frames 90
demo demo-full: $(STAMP)
	@echo "fraud: generate transactions; train GNN + autoencoder + XGBoost; ablation against simple baselines"
	@$(BIN)/fraud make-data $(FRAUD_DATA) --out $(DEMO)/fraud/tx.parquet --seed $(SEED) --quiet
	@$(BIN)/fraud train --data $(DEMO)/fraud/tx.parquet --out $(DEMO)/fraud/model --seed $(SEED) --quiet
	@$(BIN)/fraud evaluate --data $(DEMO)/fraud/tx.parquet --out $(DEMO)/fraud/ablation --seed $(SEED) --quiet
	@echo "fraud: score the model's unseen test period as a fresh file (3 rows broken on purpose go to the rejects)"
	@$(BIN)/python -m data_scripts.make_scoring_file --data $(DEMO)/fraud/tx.parquet --model $(DEMO)/fraud/model --out $(DEMO)/fraud/scoring/new.csv --seed $(SEED)
	@$(BIN)/fraud feedback --model $(DEMO)/fraud/model --labels $(DEMO)/fraud/scoring/new.labels.parquet --transactions $(DEMO)/fraud/scoring/new.csv
	@$(BIN)/fraud score --model $(DEMO)/fraud/model --input $(DEMO)/fraud/scoring/new.csv --output $(DEMO)/fraud/scoring/scored.csv --quiet
	@echo "detection: generate road scenes, check them, train, mine hard negatives, export to ONNX, track a video"
	@$(BIN)/python -m data_scripts.make_driving_scenes --out $(DEMO)/scenes $(SCENES) --seed $(SEED)
	@$(BIN)/detection check-data $(DEMO)/scenes/data.yaml --out $(DEMO)/check-data --quiet
	@$(BIN)/detection train --data $(DEMO)/scenes/data.yaml --model yolo11n.yaml $(DET) --out $(DEMO)/det/base --seed $(SEED) --quiet
	@$(BIN)/detection mine --model $(DEMO)/det/base --data $(DEMO)/scenes/data.yaml --rounds 1 $(MINE) --out $(DEMO)/det/mined --seed $(SEED) --quiet
	@$(BIN)/detection export -m $(DEMO)/det/mined/round-1/model -o $(DEMO)/det/export --data $(DEMO)/scenes/data.yaml --precision int8 $(EXPORT) --seed $(SEED) --quiet
	@$(BIN)/python -m data_scripts.make_driving_video --out $(DEMO)/video $(VIDEO) --seed $(SEED)
	@$(BIN)/detection video -m $(DEMO)/det/export -s $(DEMO)/video/video.mp4 -o $(DEMO)/annotated.mp4 --tracks $(DEMO)/tracks.txt --gt $(DEMO)/video/gt.txt --quiet
	@echo
	@$(BIN)/python -m benchmarks.demo_summary --dir $(DEMO) --seed $(SEED)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf .cache runs
