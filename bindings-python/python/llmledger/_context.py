"""Per-request attribution through :mod:`contextvars`.

``Tracker.attribute(...)`` (or :func:`llmledger.attribute`) sets who a call is for in the current context:
it is async-safe (each asyncio task and each thread sees its own value; tasks inherit their creator's),
and nests (inner values override outer ones, tags merge). At call time the wrapper merges, in order of
precedence: the innermost ``attribute`` block, then outer blocks, then the values given to ``wrap``.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Dict, Iterator, Mapping, NamedTuple, Optional


class Attribution(NamedTuple):
    """Who a call is for. The tuple layout is what the native module reads."""

    user_id: Optional[str] = None
    workspace_id: Optional[str] = None
    project: Optional[str] = None
    session_id: Optional[str] = None
    conversation_id: Optional[str] = None
    tags: Optional[Dict[str, str]] = None

    def overlay(self, top: "Attribution") -> "Attribution":
        """``self`` with every value ``top`` sets replacing it; tags merged (``top`` wins per key)."""
        tags = self.tags
        if top.tags:
            tags = {**self.tags, **top.tags} if self.tags else top.tags
        return Attribution(
            top.user_id if top.user_id is not None else self.user_id,
            top.workspace_id if top.workspace_id is not None else self.workspace_id,
            top.project if top.project is not None else self.project,
            top.session_id if top.session_id is not None else self.session_id,
            top.conversation_id if top.conversation_id is not None else self.conversation_id,
            tags,
        )


EMPTY = Attribution()

_CURRENT: ContextVar[Optional[Attribution]] = ContextVar("llmledger_attribution", default=None)


def make(
    user_id: Optional[str] = None,
    workspace_id: Optional[str] = None,
    project: Optional[str] = None,
    session_id: Optional[str] = None,
    conversation_id: Optional[str] = None,
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


def resolve(base: Attribution) -> Attribution:
    """``base`` (from ``wrap``) overlaid with the current context's attribution."""
    ctx = _CURRENT.get()
    return base if ctx is None else base.overlay(ctx)


@contextmanager
def attribute(
    user_id: Optional[str] = None,
    workspace_id: Optional[str] = None,
    project: Optional[str] = None,
    session_id: Optional[str] = None,
    conversation_id: Optional[str] = None,
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
