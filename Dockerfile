# The local stack in a container, and the tools that deploy the same template to LocalStack.
#
#   docker compose up                        # see docker-compose.yml
#   docker build --target stack -t chat-realtime-stack .
#   docker run --rm -p 127.0.0.1:3001:3001 -p 127.0.0.1:3443:3443 -p 127.0.0.1:5005:5005 chat-realtime-stack
#
# Everything is installed while the image is built: a container downloads nothing when it starts.

# The template's Lambda runtime is python3.13: the stack's workers run this interpreter.
ARG PYTHON_IMAGE=python:3.13-slim

# ---------------------------------------------------------------- the local stack
FROM ${PYTHON_IMAGE} AS stack

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The stack runs as this user (by number, so that runAsNonRoot-style checks can tell); the code
# stays root's, read-only for it.
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin chat

WORKDIR /app
# The local stack is a package of its own, installed first: the chat project depends on it by name.
COPY packages/wsstack/pyproject.toml packages/wsstack/README.md ./packages/wsstack/
COPY packages/wsstack/src ./packages/wsstack/src
RUN pip install ./packages/wsstack
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .
COPY template.yaml env.local.json users.local.json samconfig.toml ./
COPY events ./events
COPY scripts ./scripts
COPY web ./web
# .local holds the state file and whatever the stack keeps between runs: the one folder the
# user writes. A named volume mounted here starts out with this owner.
RUN mkdir .local && chown chat:chat .local

USER 10001:10001
# WebSocket and @connections, the same over TLS (domainName), the AWS emulator.
EXPOSE 3000 3001 3443 5005
# Healthy once every server the state file names answers (it is written when the stack is ready).
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "wsstack.health", "--state-file", ".local/stack.json"]
# Every interface of the container, so that published ports reach it; URLs in the state file
# name 127.0.0.1, which containers sharing its network (network_mode: service:stack) use too.
# The demo conversation is docker-compose.yml's one-shot `seed`, not part of the stack.
CMD ["wsstack", "up", "--host", "0.0.0.0", "--state-file", ".local/stack.json", "--site", "web"]

# ------------------------------------ sam deploy to LocalStack, and the end-to-end suite
FROM stack AS tools

# Installing needs root (uid 0).
USER 0
# Versions come from pyproject.toml's bounds, as in `make validate`.
# hadolint ignore=DL3013
RUN pip install './packages/wsstack[test]' '.[dev,deploy]'
COPY tests ./tests
COPY packages/wsstack/tests ./packages/wsstack/tests
# Built here, so that deploying downloads nothing: sam build installs the functions'
# requirements with python3.13, the template's runtime.
RUN SAM_CLI_TELEMETRY=0 sam build && chown -R chat:chat .aws-sam
USER 10001:10001
# One-shot tools, not a server.
HEALTHCHECK NONE
CMD ["python", "scripts/deploy_localstack.py"]
