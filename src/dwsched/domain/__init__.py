"""Pure domain: types, rules and decisions. No I/O, no clock, no framework imports."""

from __future__ import annotations
