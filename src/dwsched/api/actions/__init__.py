"""Action handlers, one module per resource; each exports HANDLERS by Action name."""

from __future__ import annotations
