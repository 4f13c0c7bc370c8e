"""Exercise checks that tell a learner, by running their code, whether an exercise is right.

A lesson cell stays one readable call; the deliberately broken variants of the app
("mutants") live in ``course/checks/lNN.py`` next to the lesson's other checks.

``check_test(name, mutants=[...])``, for "write a test" exercises:

* the exercise still holds the placeholder (``...``): prints "Not attempted yet: ..." and
  returns, so *Run All* on an untouched learner notebook never stops;
* the learner's test fails against the real app: raises :class:`ExerciseIncomplete` with
  pytest's one-line report (the test is what needs fixing);
* the test still passes with a mutant installed: raises, naming every mutant it did not
  catch ("your test still passes when the route forgets to lower-case e-mails");
* otherwise prints "Well done: ...".

``report(problems, success)`` is the same verdict for "write a function / fixture"
exercises whose lesson checks a property itself. Both raise with a short message and a
short traceback: the frames of this module are hidden from IPython's report.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

NOT_ATTEMPTED = "Not attempted yet"
WELL_DONE = "Well done"
PLACEHOLDER_MARK = "YOUR CODE HERE"


class ExerciseIncomplete(AssertionError):
    """The learner's answer runs but is not right yet; the message says what is missing."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"ExerciseIncomplete: {self}"]


@dataclass(frozen=True)
class Mutant:
    """A deliberately broken app the learner's test must catch.

    ``description`` completes the sentence "your test still passes when ...";
    ``install`` returns a context manager that breaks the app while it is active.
    ``hint`` (optional) says which assertion would catch it.
    """

    description: str
    install: Callable[[], AbstractContextManager[Any]]
    hint: str = ""


@dataclass(frozen=True)
class Condition:
    """A changed but still correct world the learner's test must keep passing in.

    A mutant breaks the app and the test must fail; a condition changes only what a correct
    test must not depend on (ids that do not start at 1, another order, a slower clock).
    ``description`` completes the sentence "your test fails when ..."; ``install`` returns a
    context manager that sets the condition up while it is active; ``advice`` says what to
    change in the test.
    """

    description: str
    install: Callable[[], AbstractContextManager[Any]]
    advice: str = ""


def attempted(obj: Any) -> bool:
    """False while ``obj`` (a function or source text) still holds the exercise placeholder.

    The learner version of an exercise replaces the solution with ``...  # YOUR CODE HERE``:
    a bare ``...`` statement in the body (or the marker comment) means "not attempted".
    """
    source = obj if isinstance(obj, str) else _source(obj)
    if source is None:
        return True
    if PLACEHOLDER_MARK in source:
        return False
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis:
            return False
    return True


def _source(func: Any) -> str | None:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return None


def not_attempted(what: str) -> None:
    """Print the standard "not attempted" line (never fails the cell)."""
    print(f"{NOT_ATTEMPTED}: {what} Replace the `...` with your code and run the cell again.")


def report(problems: Sequence[str], success: str) -> None:
    """Print "Well done: <success>" when ``problems`` is empty, else raise listing them."""
    __tracebackhide__ = True
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ExerciseIncomplete(f"not yet:\n{listed}")
    print(f"{WELL_DONE}: {success}")


@contextlib.contextmanager
def replace_route(app: Any, method: str, path: str, endpoint: Callable, *, same_response_model: bool = False) -> Iterator[None]:
    """Serve ``method path`` with ``endpoint`` instead of the app's own route while active.

    For mutants: "a route that answers 200 to everything", "a route that skips the
    lower-casing", ... The replacement keeps the route's status code and the app's
    dependency overrides (and, with ``same_response_model``, its response model); the original
    route is put back at exit.
    """
    from fastapi.routing import APIRoute

    router, index, route = _find_route(app.router, method.upper(), path)
    replacement = APIRoute(
        route.path,
        endpoint,
        methods=[method.upper()],
        status_code=route.status_code,
        name=route.name,
        dependency_overrides_provider=route.dependency_overrides_provider,
        **({"response_model": route.response_model} if same_response_model else {}),
    )
    router.routes[index] = replacement
    _routes_changed(router)
    try:
        yield
    finally:
        router.routes[index] = route
        _routes_changed(router)


@contextlib.contextmanager
def record_calls(app: Any, method: str, path: str) -> Iterator[list[dict[str, Any]]]:
    """Serve ``method path`` with the app's own endpoint, recording the arguments of every call.

    For checks of *how* a test did something: "the test created Luna through ``POST /animals``
    instead of seeding her". The list yielded holds one dict of keyword arguments per request.
    """
    import functools

    _, _, route = _find_route(app.router, method.upper(), path)
    real = route.endpoint
    calls: list[dict[str, Any]] = []

    @functools.wraps(real)  # FastAPI reads the signature through __wrapped__: same parameters, same dependencies
    async def endpoint(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return await real(*args, **kwargs)

    with replace_route(app, method, path, endpoint, same_response_model=True):
        yield calls


def _find_route(router: Any, method: str, path: str, seen: set[int] | None = None) -> tuple[Any, int, Any]:
    """The router holding the ``method path`` route (FastAPI >= 0.160 keeps included routers nested)."""
    from fastapi.routing import APIRoute

    seen = set() if seen is None else seen
    seen.add(id(router))
    for index, route in enumerate(router.routes):
        if isinstance(route, APIRoute) and route.path == path and method in route.methods:
            return router, index, route
        inner = getattr(route, "original_router", None)
        if inner is not None and id(inner) not in seen:
            try:
                return _find_route(inner, method, path, seen)
            except LookupError:
                pass
    raise LookupError(f"the app has no route {method} {path}")


def _routes_changed(router: Any) -> None:
    mark = getattr(router, "_mark_routes_changed", None)  # FastAPI caches the routes it matches
    if mark is not None:
        mark()


@dataclass
class _Run:
    code: int
    output: str

    @property
    def failures(self) -> list[str]:
        """pytest's short summary lines (FAILED/ERROR ...), without the temporary module name."""
        lines = [line for line in self.output.splitlines() if line.startswith(("FAILED", "ERROR"))]
        return [re.sub(r"t_[0-9a-f]{32}\.py::", "", line)[:400] for line in lines]


def _run(tests: Sequence[str], args: Sequence[str]) -> _Run:
    import gc

    import ipytest

    gc.freeze()  # see course.notebook.run_tests: keeps pytest's gc passes short
    buffer = io.StringIO()
    # A wide "terminal" (ipytest sets COLUMNS itself): pytest cuts its summary lines, the
    # assertion that failed, to the width.
    with contextlib.redirect_stdout(buffer):
        code = int(ipytest.run("--tb=line", *args, *(f"{{MODULE}}::{name}" for name in tests),
                               raise_on_error=False, display_columns=400))
    return _Run(code, buffer.getvalue())


def check_test(
    *tests: str,
    mutants: Sequence[Mutant],
    hint: str = "",
    args: Sequence[str] = (),
    namespace: dict[str, Any] | None = None,
    conditions: Sequence[Condition] = (),
    after_run: Callable[[str], str | None] | None = None,
) -> None:
    """Run the learner's test(s) against the real app, then under each condition, then against each mutant.

    ``tests`` are names of test functions defined in the notebook (a parametrized test's
    name with its id, ``"test_x[naive]"``, works too). ``hint`` is printed when a mutant
    slips through. ``args`` are extra pytest options. ``conditions`` must not make the test
    fail (see :class:`Condition`). ``after_run`` is called after every run with the run's
    description ("against the real app", "when <mutant>"); it cleans up what the test left
    behind and returns a sentence about it, which fails the exercise (for instance "your test
    left its override in place"), or ``None``.
    """
    __tracebackhide__ = True
    if not tests:
        raise ValueError("name at least one test to check")
    if not mutants:
        raise ValueError("a check needs at least one mutant: a test that nothing can fail proves nothing")
    caller = namespace if namespace is not None else sys._getframe(1).f_globals
    names = ", ".join(f"`{t}`" for t in tests)
    missing = [t for t in tests if t.split("[")[0] not in caller]
    if missing:
        raise ExerciseIncomplete(f"no test named {', '.join(missing)} in this notebook: run the exercise cell first.")
    if not all(attempted(caller[t.split("[")[0]]) for t in tests):
        not_attempted(f"{names} still holds the placeholder.")
        return

    def run_and_inspect(tests: Sequence[str], args: Sequence[str], when: str) -> _Run:
        __tracebackhide__ = True
        run = _run(tests, args)
        if after_run is not None and (problem := after_run(when)):
            raise ExerciseIncomplete(problem)
        return run

    real = run_and_inspect(tests, args, "against the real app")
    if real.code == 5:
        raise ExerciseIncomplete(f"pytest found no test {names}: is it still named like that, and async where it awaits?")
    if real.code != 0:
        details = "\n".join(f"  {line}" for line in real.failures) or real.output.strip()[-1500:]
        if "IsolationBreach" in real.output:
            raise ExerciseIncomplete(
                "in your test a session of another engine started a transaction while the test's isolated sessions "
                "were in place, and tests/isolation.py stopped it before it wrote (IsolationBreach): its commit would "
                "have been a real COMMIT that outlives the test. Put rows in place through the test's own sessions "
                f"(`async with sessions() as session:`).\n{details}"
            )
        raise ExerciseIncomplete(
            f"your test fails against the real app, which behaves correctly here, so the test needs fixing:\n{details}"
        )

    for condition in conditions:
        with condition.install():
            run = run_and_inspect(tests, args, f"when {condition.description}")
        if run.code != 0:
            details = "\n".join(f"  {line}" for line in run.failures) or run.output.strip()[-1500:]
            advice = f"\n{condition.advice}" if condition.advice else ""
            raise ExerciseIncomplete(
                f"your test passes against the real app but fails when {condition.description}:\n{details}{advice}"
            )

    slipped = []
    for mutant in mutants:
        with mutant.install():
            run = run_and_inspect(tests, args, f"against a broken app where {mutant.description}")
        if run.code == 0:
            slipped.append(mutant)
    if slipped:
        lines = "\n".join(
            f"  - your test still passes when {m.description}" + (f" ({m.hint})" if m.hint else "") for m in slipped
        )
        more = f"\nHint: {hint}" if hint else ""
        raise ExerciseIncomplete(
            f"not yet: {names} passes against the real app, but also against broken versions of it:\n{lines}\n"
            f"A test must fail when the behaviour it checks is broken: add the assertion that catches it.{more}"
        )
    print(f"{WELL_DONE}: {names} passes against the real app and fails against each of {len(mutants)} broken versions:")
    for mutant in mutants:
        print(f"  - {mutant.description}")
    for condition in conditions:
        print(f"  and it still passes when {condition.description}")
