"""The DataWorks RPC protocol over HTTP: thin handlers over the store."""

from __future__ import annotations
