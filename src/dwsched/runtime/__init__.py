"""Composition root: builds the store, the API app and (later) the engine from settings."""

from __future__ import annotations
