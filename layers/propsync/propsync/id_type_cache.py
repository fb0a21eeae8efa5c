"""The id types of a project, remembered for 60 s per Lambda container.

Every command that names ids needs its project's id types; reading the project
item for each would add a read to every tracking request. Id types are only
ever added (propsync.id_types), so a cached set can only lack the newest ones:
an id type added with ``propsync set-id-type`` is accepted by
every container within ID_TYPES_CACHE_SECONDS, and refused as unknown until
then by a container that read the project's id types before it was added.
(Imports read them afresh for every execution: they know a new id type at once.)
"""

from __future__ import annotations

import time

from propsync.access import is_project_token
from propsync.container import forgotten_with
from propsync.errors import UnknownProjectError
from propsync.id_types import IdTypes
from propsync.store.access import AccessStore

ID_TYPES_CACHE_SECONDS = 60.0
_cached: dict[str, tuple[float, IdTypes]] = {}  # project -> (valid until, its id types)


def id_types_of(access: AccessStore, project: str) -> IdTypes:
    """The project's id types (read at most once a minute per container);
    UnknownProjectError if there is no such project (not cached)."""
    if not is_project_token(project):  # no read for a key DynamoDB could refuse
        raise UnknownProjectError(project)
    now = time.monotonic()
    cached = _cached.get(project)
    if cached is not None and cached[0] > now:
        return cached[1]
    id_types = access.project_id_types(project)
    if id_types is None:
        raise UnknownProjectError(project)
    _cached[project] = (now + ID_TYPES_CACHE_SECONDS, id_types)
    return id_types


@forgotten_with
def forget_id_types() -> None:
    """Drop the per-container cache of id types (a new container, or one
    restored from a SnapStart snapshot, reads them again)."""
    _cached.clear()
