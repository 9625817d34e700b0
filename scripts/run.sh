#!/usr/bin/env bash
# Sets everything up, then runs Passerelle on the embedded defaults: SQLite file in var/, SIP on 127.0.0.1:5060,
# HTTP on http://localhost:8080. Extra arguments go to `passerelle serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh "" janus
exec passerelle serve "$@"
