"""The one exception inside the notify package: a notice that cannot be delivered, with
a detail safe to show and whether trying again may help. `send` turns it into an
`Outcome`; it never leaves the package."""

from __future__ import annotations


class Undeliverable(Exception):
    def __init__(self, detail: str, *, retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
