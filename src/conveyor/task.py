"""Tasks: a Python function plus the options it runs with, and argument validation.

Arguments are validated when a job is enqueued (from Python or over HTTP), against the
function's signature or a declared pydantic model, so a bad submit fails at once with a
field-by-field error instead of failing later in a worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pydantic

from conveyor.errors import InvalidArguments
from conveyor.limits import TaskLimits
from conveyor.types import DEFAULT_MAX_ATTEMPTS, DependencyPolicy, Job, RetryPolicy

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.canvas import Signature

CONTEXT_PARAM = "ctx"


@dataclass(frozen=True)
class TaskOptions:
    """How jobs of a task run unless a call overrides it."""

    queue: str = "default"
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    priority: int = 0
    limits: TaskLimits = field(default_factory=TaskLimits)
    """Concurrency / rate limits and unique key declared on the task (``conveyor.limits``)."""
    resources: tuple[tuple[str, int], ...] = ()
    """What one job needs of a node (``resources={"gpu": 1}``): see conveyor/resources.py."""
    expected_runtime: float | None = None
    """Seconds a job of this task is expected to run: above its queue's ``max_runtime`` it is
    submitted straight to the queue's ``overflow_to`` queue instead of overrunning there."""


@dataclass(frozen=True)
class CallOptions:
    """Per-enqueue overrides: when, how urgent, idempotency, dependencies."""

    queue: str | None = None
    priority: int | None = None
    delay: float | None = None
    run_at: float | None = None
    idempotency_key: str | None = None
    depends_on: tuple[str, ...] = ()
    tenant: str | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    workflow_id: str | None = None
    step: str | None = None
    on_dependency_failure: DependencyPolicy = DependencyPolicy.CANCEL
    quorum: int | None = None
    unique_key: str | None = None
    """Only one pending or running job per unique key (wins over the task's declaration)."""


def _args_model(fn: Callable[..., Any], name: str) -> type[pydantic.BaseModel]:
    """A pydantic model of the function's parameters (without the job context)."""
    fields: dict[str, Any] = {}
    hints = inspect.get_annotations(fn, eval_str=True)
    for param in inspect.signature(fn).parameters.values():
        if param.name == CONTEXT_PARAM:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"task {name}: parameter {param.name!r} must be an ordinary keyword parameter")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    return pydantic.create_model(f"{name}_args", __config__=config, **fields)


def _field_errors(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "args"
        message = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
        out.append({"field": loc, "message": message})
    return out


class Task:
    """A registered task. Call ``enqueue`` / ``enqueue_async`` to submit a job of it."""

    def __init__(
        self,
        app: Conveyor,
        fn: Callable[..., Any],
        name: str,
        options: TaskOptions,
        args_model: type[pydantic.BaseModel] | None = None,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.takes_context = CONTEXT_PARAM in inspect.signature(fn).parameters
        self.declared_model = args_model is not None
        self.args_model = args_model or _args_model(fn, name)
        self.__doc__ = fn.__doc__

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function directly, in-process (handy in tests)."""
        return self.fn(*args, **kwargs)

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check ``args`` against the task's parameters; return them JSON-ready.

        Raises InvalidArguments naming every bad field.
        """
        if not isinstance(args, dict):
            raise InvalidArguments(
                "args must be an object of named arguments", [{"field": "args", "message": "must be an object"}]
            )
        try:
            model = self.args_model.model_validate(args)
        except pydantic.ValidationError as exc:
            errors = _field_errors(exc)
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise InvalidArguments(f"invalid arguments for task {self.name}: {summary}", errors) from None
        return model.model_dump(mode="json")

    def bind(self, args: dict[str, Any]) -> dict[str, Any]:
        """Turn stored JSON args into the keyword arguments the function receives."""
        model = self.args_model.model_validate(args)
        if self.declared_model:
            params = [p for p in inspect.signature(self.fn).parameters if p != CONTEXT_PARAM]
            if len(params) == 1:
                return {params[0]: model}
        return {name: getattr(model, name) for name in type(model).model_fields}

    def json_schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()

    def with_options(self, **overrides: Any) -> BoundCall:
        """Per-call options: ``report.with_options(delay=60, priority=5).enqueue(user_id=7)``."""
        return BoundCall(self, CallOptions(**overrides))

    def s(self, **args: Any) -> Signature:
        """A signature: this task with ``args``, not enqueued yet, for ``app.chain``,
        ``app.group``, ``app.enqueue_many``. Refine it with ``.set(step=..., queue=...)`` and
        ``.after(other_signature)``."""
        from conveyor.canvas import signature

        return signature(self, args)

    def enqueue(self, **args: Any) -> Job:
        return self.app.enqueue(self.name, args)

    async def enqueue_async(self, **args: Any) -> Job:
        return await self.app.enqueue_async(self.name, args)


@dataclass(frozen=True)
class BoundCall:
    task: Task
    options: CallOptions

    def with_options(self, **overrides: Any) -> BoundCall:
        return BoundCall(self.task, replace(self.options, **overrides))

    def enqueue(self, **args: Any) -> Job:
        return self.task.app.enqueue(self.task.name, args, self.options)

    async def enqueue_async(self, **args: Any) -> Job:
        return await self.task.app.enqueue_async(self.task.name, args, self.options)
