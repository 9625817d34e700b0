#!/usr/bin/env bash
# Sets everything up (Debian packages, virtual environment, PostgreSQL), then runs the linters, the type checker
# and every test. Extra arguments go to pytest, e.g. `scripts/test.sh -m "not e2e"` skips the slow end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test postgresql espeak-ng sox baresip-core sip-tester chromium
source scripts/postgres.sh

ruff check .
ruff format --check .
mypy
exec python -m pytest "$@"
