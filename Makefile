# `make up` and `make test` each bootstrap the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: up test bench lint validate build deploy clean

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): installing the project and its tools (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

up: $(STAMP)
	$(BIN)/wsstack up --seed '$(BIN)/python scripts/seed.py' $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# Prints speed and memory figures; nothing here asserts a time.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/cfn-lint template.yaml

# `sam validate --lint` needs aws-sam-cli, which is large: installed only on demand.
validate: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy]'
	SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint --region us-east-1

build: validate
	SAM_CLI_TELEMETRY=0 $(BIN)/sam build

deploy: build
	SAM_CLI_TELEMETRY=0 $(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .local .pytest_cache
