#!/usr/bin/env bash
# Sets up everything Passerelle needs on a Debian machine (run as root, or with sudo available):
# the Debian packages named by the caller, a virtual environment in .venv, and the Python packages.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again (it only installs what is missing).
#
# usage: source scripts/setup.sh [EXTRA] [DEBIAN-PACKAGE ...]      EXTRA: "" (run) or "test"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
extra="${1:-}"
shift || true

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null; then apt_install python3; fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: Passerelle needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)" >&2
    exit 1
fi

[ $# -gt 0 ] && apt_install "$@"

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

# Reinstall only when the project's dependencies changed.
stamp="$VENV/.installed-${extra:-base}"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    spec="$ROOT"
    [ -n "$extra" ] && spec="$ROOT[$extra]"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
    rm -f "$VENV"/.installed-*
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"

# Voice prompts: generated from their texts (espeak-ng, sox), again whenever the texts change.
prompts="$ROOT/bridge/prompts"
if [ ! -f "$prompts/fr/welcome.wav" ] || [ "$prompts/texts.toml" -nt "$prompts/fr/welcome.wav" ]; then
    apt_install espeak-ng sox
    "$VENV/bin/python" "$ROOT/scripts/make_prompts.py" >&2
fi
