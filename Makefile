# `make up` and `make test` each bootstrap the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The chat project depends on the local stack by name (packages/wsstack, installed first), so
# a change to either pyproject.toml re-installs both.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml packages/wsstack/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: up test bench soak lint validate build deploy outputs delete clean node-ric

$(STAMP): pyproject.toml packages/wsstack/pyproject.toml
	@echo "Setting up $(VENV): installing the project and its tools (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e './packages/wsstack[test]'
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The Lambda runtime interface client for Node (npm's aws-lambda-ric), which runs nodejs20.x and
# nodejs22.x functions: wsstack finds it in .local/node-ric and never installs it itself. Only
# where node and npm are on PATH; its install builds curl and aws-lambda-cpp from source (70-85 s
# measured on 2 cores) and needs autoconf, automake, libtool, cmake and a C++ compiler (Debian:
# apt-get install autoconf automake libtool cmake g++). Where any is missing it says so and goes
# on: the Node tests are then skipped, saying why. Beside it go the AWS SDK for JavaScript clients
# the tests' Node apps import, as Lambda's Node runtimes provide the SDK (a few seconds). The
# folder's package.json names them all, so that a later `npm install --prefix .local/node-ric
# <package>` keeps them: npm removes what no package.json names.
NODE_RIC := .local/node-ric
NODE_RIC_VERSION := 3.3.0
NODE_RIC_BUILT := $(NODE_RIC)/node_modules/aws-lambda-ric/dist/rapid-client.node
NODE_SDK_VERSION := 3.1169.0
NODE_SDK := $(patsubst %,@aws-sdk/%@$(NODE_SDK_VERSION),client-apigatewaymanagementapi client-dynamodb lib-dynamodb)
NODE_SDK_INSTALLED := $(NODE_RIC)/node_modules/@aws-sdk/lib-dynamodb/package.json
NPM_INSTALL := npm install --prefix $(NODE_RIC) --no-audit --no-fund --save-exact

node-ric:
	@if [ -f $(NODE_RIC_BUILT) ] && [ -f $(NODE_SDK_INSTALLED) ]; then :; \
	elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "node-ric: skipped (node or npm not on PATH): nodejs functions cannot run, their tests are skipped"; \
	elif [ -f $(NODE_RIC_BUILT) ]; then \
	  echo "Installing the AWS SDK for JavaScript clients into $(NODE_RIC)"; \
	  $(NPM_INSTALL) $(NODE_SDK) >$(NODE_RIC)/install.log 2>&1 \
	  || echo "node-ric: the SDK install failed (see $(NODE_RIC)/install.log); the Node SDK tests are skipped"; \
	elif ! command -v autoreconf >/dev/null 2>&1 || ! command -v libtoolize >/dev/null 2>&1 \
	  || ! command -v cmake >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; then \
	  echo "node-ric: skipped: building aws-lambda-ric needs autoconf, automake, libtool, cmake and g++" \
	    "(apt-get install autoconf automake libtool cmake g++); nodejs tests are skipped"; \
	else \
	  echo "Installing aws-lambda-ric $(NODE_RIC_VERSION) into $(NODE_RIC) (builds from source, a minute or more)"; \
	  mkdir -p $(NODE_RIC) && $(NPM_INSTALL) aws-lambda-ric@$(NODE_RIC_VERSION) $(NODE_SDK) >$(NODE_RIC)/install.log 2>&1 \
	  || echo "node-ric: the install failed (see $(NODE_RIC)/install.log); nodejs tests are skipped"; \
	fi

up: $(STAMP)
	$(BIN)/wsstack up --site web --prewarm --seed '$(BIN)/python scripts/seed.py' $(ARGS)

test: $(STAMP) node-ric
	$(BIN)/python -m pytest $(ARGS)

# Prints speed and memory figures; nothing here asserts a time.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(ARGS)

# A few minutes of chat traffic on a stack of its own while workers are killed, sockets
# aborted and connections deleted; exits 1 if a message was lost or stored twice.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py $(ARGS)

# The container files are checked without a Docker engine: the compose file against the
# Compose specification's schema, and by docker-compose 1.29 where it is installed (CI installs
# it); the Dockerfile by hadolint (tests/e2e/test_container.py runs its command).
lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks packages
	$(BIN)/cfn-lint template.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint --no-color --failure-threshold warning Dockerfile; \
	else echo "lint: skipped hadolint (no build for this platform): Dockerfile not linted"; fi
	@if command -v docker-compose >/dev/null 2>&1; then \
	  docker-compose --file docker-compose.yml config --quiet && echo "docker-compose config: ok"; \
	else echo "lint: skipped docker-compose config (not installed; apt-get install docker-compose):" \
	  "docker-compose.yml checked against the Compose schema only"; fi

# `sam validate --lint` needs aws-sam-cli, which is large: installed only on demand.
SAM := SAM_CLI_TELEMETRY=0 $(BIN)/sam

validate: $(STAMP)
	$(BIN)/python -m pip install --quiet -e './packages/wsstack[test]' -e '.[dev,deploy]'
	$(SAM) validate --lint --region us-east-1

# The functions' Runtime is python3.13: sam build runs that interpreter to package them.
build: validate
	@python3.13 -c pass 2>/dev/null || { echo "sam build needs python3.13 on PATH (the template's Runtime): install Python 3.13, or with pyenv list it in PYENV_VERSION"; exit 2; }
	$(SAM) build

# Deploys with samconfig.toml's defaults (stack messageai-chat); the first time, or to change
# them: make deploy ARGS="--guided". Needs AWS credentials and a region (AWS_REGION or --region).
deploy: build
	$(SAM) deploy $(ARGS)

outputs: validate
	$(SAM) list stack-outputs $(ARGS)

delete: validate
	$(SAM) delete $(ARGS)

clean:
	rm -rf $(VENV) .aws-sam .local .pytest_cache
