"""The engine: scheduler, planner and workers (built in the engine issues)."""

from __future__ import annotations
