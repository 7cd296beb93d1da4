"""The operations web page (built in the operations-center issue)."""

from __future__ import annotations
