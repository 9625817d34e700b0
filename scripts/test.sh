#!/usr/bin/env bash
# Sets everything up (Debian packages, virtual environment, PostgreSQL), then runs the linters, the type checker
# and every test. Extra arguments go to pytest, e.g. `scripts/test.sh -m "not e2e"` skips the slow end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test postgresql espeak-ng sox baresip-core sip-tester chromium faketime janus clamav-daemon linphone-cli \
    kamailio systemd
source scripts/postgres.sh
# Kamailio runs only as the tests start it (config/kamailio/); Debian's own service would hold port 5060.
if command -v systemctl >/dev/null && systemctl is-enabled --quiet kamailio 2>/dev/null; then
    as_root systemctl disable --now kamailio >&2 || true
fi

# From npm, with Node (Debian's, unless a node and npm are already there), each installed again whenever its lock
# file changes: the health portal's stand-in for the sign-in tests (oidc-provider), and axe-core, the accessibility
# checker the browser tests inject into every page.
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
for folder in tests/oidc tests/web/axe; do
    lock="$(sha256sum "$folder/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$folder/node_modules/.installed" 2>/dev/null)" != "$lock" ]; then
        (cd "$folder" && npm ci --no-audit --no-fund --loglevel=error) >&2
        echo "$lock" > "$folder/node_modules/.installed"
    fi
done

ruff check .
ruff format --check .
mypy
python -m pytest --durations=25 "$@"  # the 25 slowest listed: CI has to stay inside 30 min

# The clock guard (with no arguments, as CI runs it): the tests of schedules, codes, invitations and the site run
# again with the clock five years ahead (libfaketime), so a test that only passes before some date fails today.
if [ $# -eq 0 ]; then
    echo "clock guard: the date-dependent tests again, five years from now" >&2
    faketime -f "+5y" python -m pytest -q -m "not e2e" --no-postgres -p no:cacheprovider \
        tests/cli/test_cli.py tests/rooms tests/notify tests/web/test_site.py tests/web/test_join.py \
        tests/web/test_api.py -k "not schemathesis"
fi
