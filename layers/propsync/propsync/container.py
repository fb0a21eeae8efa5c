"""What one Lambda container builds once and keeps between invocations, declared
in one place so that one call forgets all of it.

The SDK clients (each with its connection pool), the thread pool of a batch's
writes and the projects' id types are made on first use and kept for the
container's life: making them per invocation would cost more than the work
(docs/DECISIONS.md: "Functions load boto3 at init, create clients on first
use", "One thread pool per container"). Each module declares such state here,
a factory with ``per_container`` and anything else with ``forgotten_with``;
``forget_container_state`` then forgets it all, so that the next use builds it
anew:

- after a SnapStart restore (``propsync.snapstart``), where many containers
  resume from one snapshot and must not share connections or threads;
- between tests, each of which plays a new container.

A factory that was never called has nothing to forget, so a function pays
only for the state it uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_FORGET: list[Callable[[], object]] = []


def per_container(factory: Callable[[], T]) -> functools._lru_cache_wrapper[T]:
    """``factory``'s result, made on the first call and kept until the
    container's state is forgotten."""
    return _declare(functools.cache(factory), close=None)


def per_container_closed_by(
    close: Callable[[T], object],
) -> Callable[[Callable[[], T]], functools._lru_cache_wrapper[T]]:
    """``per_container`` for what holds resources that outlive their last
    reference (threads): ``close`` is called on the kept result before it is
    forgotten."""

    def declare(factory: Callable[[], T]) -> functools._lru_cache_wrapper[T]:
        return _declare(functools.cache(factory), close=close)

    return declare


def forgotten_with(forget: Callable[[], None]) -> Callable[[], None]:
    """Declare ``forget`` (which drops some state kept per container) to run
    whenever the container's state is forgotten."""
    _FORGET.append(forget)
    return forget


def forget_container_state() -> None:
    """Forget everything declared here; the next use builds it anew."""
    for forget in _FORGET:
        forget()


def _declare(
    cached: functools._lru_cache_wrapper[T], close: Callable[[T], object] | None
) -> functools._lru_cache_wrapper[T]:
    def forget() -> None:
        if close is not None and cached.cache_info().currsize:
            close(cached())
        cached.cache_clear()

    _FORGET.append(forget)
    return cached
