"""The ``conveyor`` command: one Typer app, one module per command group.

Every command turns Conveyor errors into one clear line on stderr and a non-zero exit code;
no traceback reaches the user.
"""

from __future__ import annotations

from conveyor.cli.main import main

__all__ = ["main"]
