"""Voice prompts: built-in ones generated from ``texts.toml`` (``scripts/make_prompts.py``), overridable file by file
by a clinic's own recordings in ``prompts.folder`` (same layout: ``<folder>/<language>/<name>.wav``)."""

from __future__ import annotations

from bridge.prompts.library import MissingPrompt, PromptLibrary

__all__ = ["MissingPrompt", "PromptLibrary"]
