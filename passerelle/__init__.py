"""Passerelle: a telephony-first web conference bridge. This package is the entry point that wires the parts
(``config``, ``rooms``, ``bridge``, ``web``, ``notify``) into the ``passerelle`` command."""

from __future__ import annotations

import os

# One process runs the event loop and the 20 ms media clock on one core; BLAS worker threads would compete with
# it for the other one and spin between the small matrix products of the mixer, resamplers and DTMF detector
# (measured: the DTMF detector's CPU per leg fell from 6.1 to 3.1 µs with one thread). Set before numpy loads;
# an operator's own setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
