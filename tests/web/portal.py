"""The health portal's stand-in: panva/oidc-provider (an OpenID Certified provider, npm) run by Node on loopback
(``tests/oidc/provider.mjs``; ``scripts/test.sh`` installs Node and runs ``npm ci`` there)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tools import free_tcp_port, require, server_process

FOLDER = Path(__file__).parents[1] / "oidc"
CLIENT_ID = "passerelle"
CLIENT_SECRET = "test-portal-client-secret-of-some-length"


@dataclass(frozen=True)
class Portal:
    issuer: str

    def settings(self) -> dict[str, str]:
        """What a service needs to sign in through this portal (as PASSERELLE_* variables)."""
        return {"PASSERELLE_OIDC__ISSUER": self.issuer, "PASSERELLE_OIDC__CLIENT_ID": CLIENT_ID,
                "PASSERELLE_OIDC__CLIENT_SECRET": CLIENT_SECRET}  # fmt: skip


@contextmanager
def portal(folder: Path, site_base: str) -> Iterator[Portal]:
    if not (FOLDER / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("tests/oidc/node_modules is missing: run `npm ci` in tests/oidc (scripts/test.sh does)")
    port = free_tcp_port()
    command = [require("node"), str(FOLDER / "provider.mjs"), str(port), f"{site_base}/auth/callback", CLIENT_SECRET]
    with server_process(command, port, folder / "portal.log", "the OpenID Connect provider"):
        yield Portal(f"http://127.0.0.1:{port}")
