"""The real programs the tests drive (SIP phones, SIPp, sox, espeak-ng)."""

from __future__ import annotations

import shutil

import pytest


def require(name: str) -> str:
    """The path of ``name``; a failure, not a skip, when it is missing: scripts/test.sh installs every one."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/test.sh installs it)")
    return path
