"""Action handlers, one module per resource; api.registry declares each as an action."""

from __future__ import annotations
