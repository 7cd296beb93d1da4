"""dwsched: a self-hostable workflow-instance service, wire-compatible with DataWorks 2024-05-18."""

from __future__ import annotations

__version__ = "0.1.0"
