"""Passerelle: a telephony-first web conference bridge. This package is the entry point that wires the parts
(``config``, ``rooms``, ``bridge``, ``web``, ``notify``) into the ``passerelle`` command."""
