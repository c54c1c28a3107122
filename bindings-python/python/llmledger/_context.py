"""Per-request attribution through :mod:`contextvars`.

``Tracker.attribute(...)`` (or :func:`llmledger.attribute`) sets who a call is for in the current context:
it is async-safe (each asyncio task and each thread sees its own value; tasks inherit their creator's),
and nests. Only the propagation lives here; layering (inner values override outer ones, tags merge, the
context over the values given to ``wrap``) is core's one rule, ``Attribution.overlay``.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Mapping, Optional

from ._native import Attribution

_CURRENT: ContextVar[Optional[Attribution]] = ContextVar("llmledger_attribution", default=None)


def make(
    user_id: Optional[object] = None,
    workspace_id: Optional[object] = None,
    project: Optional[object] = None,
    session_id: Optional[object] = None,
    conversation_id: Optional[object] = None,
    tags: Optional[Mapping[str, object]] = None,
) -> Attribution:
    """An :class:`Attribution`, with every value turned into a string (ids are often ints)."""

    def s(v: object) -> Optional[str]:
        return None if v is None else str(v)

    return Attribution(
        s(user_id),
        s(workspace_id),
        s(project),
        s(session_id),
        s(conversation_id),
        {str(k): str(v) for k, v in tags.items()} if tags else None,
    )


def current() -> Optional[Attribution]:
    """The attribution set by the enclosing ``attribute`` blocks, or None."""
    return _CURRENT.get()


@contextmanager
def attribute(
    user_id: Optional[object] = None,
    workspace_id: Optional[object] = None,
    project: Optional[object] = None,
    session_id: Optional[object] = None,
    conversation_id: Optional[object] = None,
    tags: Optional[Mapping[str, object]] = None,
) -> Iterator[Attribution]:
    """Attributes every wrapped call made inside the block (this thread / asyncio task and the tasks it
    creates). Yields the effective attribution."""
    outer = _CURRENT.get()
    mine = make(user_id, workspace_id, project, session_id, conversation_id, tags)
    effective = mine if outer is None else outer.overlay(mine)
    token = _CURRENT.set(effective)
    try:
        yield effective
    finally:
        _CURRENT.reset(token)
