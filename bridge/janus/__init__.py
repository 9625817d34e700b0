"""Janus (its VideoRoom plugin) for cameras and screen shares: Passerelle's own small client of Janus's JSON API over
its Unix-socket transport (:mod:`bridge.janus.client`) and, for ``passerelle serve``, a supervised Janus child with
a configuration written for it (:mod:`bridge.janus.process`). The browser never talks to Janus's API: signalling
goes through the room's channel, and only Passerelle knows each room's secret and PIN."""

from bridge.janus.client import JanusClient, JanusError, JanusGone
from bridge.janus.process import EmbeddedJanus, ExternalJanus, write_config

__all__ = ["EmbeddedJanus", "ExternalJanus", "JanusClient", "JanusError", "JanusGone", "write_config"]
