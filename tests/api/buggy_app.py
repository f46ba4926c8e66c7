"""An app with a bug for the error-classification tests: ``conveyor serve --app tests.api.buggy_app:app``.

``mangle``'s argument model has a broken serializer: it turns valid input into a string no
engine can store (a lone surrogate), so the engine's enqueue raises. That is a bug in the
application, not an outage: the API must answer a logged 500, never 503 + Retry-After.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_serializer

from conveyor.app import Conveyor


class MangledArgs(BaseModel):
    text: str

    @model_serializer
    def _broken(self) -> dict[str, Any]:
        return {"text": self.text + "\ud800"}


app = Conveyor()


@app.task(name="mangle", args_model=MangledArgs)
def mangle(args: MangledArgs) -> str:
    return args.text


@app.task(name="echo")
def echo(text: str) -> str:
    return text
