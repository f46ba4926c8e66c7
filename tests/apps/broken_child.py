"""An app that imports in the supervisor but fails in every executor child (a broken deploy)."""

from __future__ import annotations

import multiprocessing

from tests.apps.basic import make_app

if multiprocessing.parent_process() is not None:
    raise RuntimeError("this app cannot be loaded in an executor process")

app = make_app()
