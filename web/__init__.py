"""The aiohttp web site: pages, JSON API, WebRTC signalling and room events. Until the web issues land it serves
the health check that ``passerelle serve`` and deployments probe."""

from __future__ import annotations

from web.app import create_app

__all__ = ["create_app"]
