from __future__ import annotations

from dwsched.cli import main

main()
