# The two README commands: `make demo` and `make test`. Both create .venv when missing and reuse it after.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEED ?= 0
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project metadata changes: a second run is fast.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole case study on small generated data; each line is a real CLI command a user can run alone.
# Demo-sized models are undertrained on purpose (minutes of CPU): the measured figures come from benchmarks/.
DEMO ?= runs/demo
demo: $(STAMP)
	@echo "== fraud: generate transactions, train GNN + autoencoder + XGBoost, evaluate"
	$(BIN)/fraud make-data --size demo --out $(DEMO)/fraud/tx.parquet --seed $(SEED)
	$(BIN)/fraud train --data $(DEMO)/fraud/tx.parquet --out $(DEMO)/fraud/model --seed $(SEED) --quiet
	$(BIN)/fraud evaluate --model $(DEMO)/fraud/model --data $(DEMO)/fraud/tx.parquet --out $(DEMO)/fraud/eval --seed $(SEED) --quiet
	@echo "== fraud: score the trained model's unseen test period as a fresh file (3 broken rows go to the rejects file)"
	$(BIN)/python -m data_scripts.make_scoring_file --data $(DEMO)/fraud/tx.parquet --model $(DEMO)/fraud/model --out $(DEMO)/fraud/scoring/new.csv --seed $(SEED)
	@echo "== fraud: the label feed of that period (each confirmed label counts from 7 days after its payment), then score it"
	$(BIN)/fraud feedback --model $(DEMO)/fraud/model --labels $(DEMO)/fraud/scoring/new.labels.parquet --transactions $(DEMO)/fraud/scoring/new.csv
	$(BIN)/fraud score --model $(DEMO)/fraud/model --input $(DEMO)/fraud/scoring/new.csv --output $(DEMO)/fraud/scoring/scored.csv --show 5
	@echo "== detection: generate road scenes, check them, train, mine hard negatives, export, track a video"
	$(BIN)/python -m data_scripts.make_driving_scenes --out $(DEMO)/scenes --n-train 300 --n-val 60 --n-pool 150 --seed $(SEED)
	$(BIN)/detection check-data $(DEMO)/scenes/data.yaml --out $(DEMO)/check-data
	$(BIN)/detection train --data $(DEMO)/scenes/data.yaml --model yolo11n.yaml --epochs 15 --imgsz 256 --out $(DEMO)/det/base --seed $(SEED)
	$(BIN)/detection mine --model $(DEMO)/det/base --data $(DEMO)/scenes/data.yaml --rounds 1 --epochs 3 --out $(DEMO)/det/mined --seed $(SEED)
	$(BIN)/detection export -m $(DEMO)/det/mined/round-1/model -o $(DEMO)/det/export --data $(DEMO)/scenes/data.yaml --imgsz 256 --precision int8 --calib-images 32 --parity-images 30 --seed $(SEED)
	$(BIN)/python -m data_scripts.make_driving_video --out $(DEMO)/video --frames 90 --seed $(SEED)
	$(BIN)/detection video -m $(DEMO)/det/export -s $(DEMO)/video/video.mp4 -o $(DEMO)/annotated.mp4 --tracks $(DEMO)/tracks.txt --gt $(DEMO)/video/gt.txt --no-progress
	@echo "demo done: reports and models under $(DEMO)/ (annotated video: $(DEMO)/annotated.mp4)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf .cache runs
