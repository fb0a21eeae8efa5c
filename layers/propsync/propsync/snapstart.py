"""Lambda SnapStart's runtime hooks, for the functions the template parameter
``SnapStart`` applies to (docs/DECISIONS.md: "SnapStart is opt-in, for the API
functions").

With SnapStart, Lambda runs a function's init once, when a version is
published, snapshots the initialized microVM and resumes every new container
of that version from the snapshot. Whatever the snapshot holds is then shared
by all of them. The handlers import this module, which registers two hooks
with ``snapshot_restore_py`` (part of Lambda's Python runtime, absent
elsewhere, where importing this module registers nothing):

- before the snapshot, ``warm_before_snapshot`` builds the DynamoDB client,
  so that botocore's parsed service model and endpoint rules are in the
  snapshot (about 70 ms of a container's first request otherwise);
- after each restore, ``restore_uniqueness`` gives the container what must be
  its own: ``random``'s generator seeded anew from the OS (backoff jitter, in
  propsync and in botocore's retries, would otherwise be the same in every
  container, which would retry in step), and everything
  ``propsync.container`` declares forgotten (SDK clients and their connection
  pools, the writers' thread pool, cached id types), to be built anew on first
  use; a client made after the restore reuses the parsed model (about 2 ms).

Ids need nothing: customer ids (ULIDs), cookies and API key secrets take their
randomness from the OS (``os.urandom``, ``uuid4``, ``secrets``) when they are
made, never during init.
"""

from __future__ import annotations

import importlib
import random

from propsync.container import forget_container_state
from propsync.store.dynamo import client_and_table_from_environment


def warm_before_snapshot() -> None:
    """Build the DynamoDB client every API function uses (no request is
    made): its service model stays in the snapshot."""
    client_and_table_from_environment()


def restore_uniqueness() -> None:
    """Make this restored container's state its own."""
    random.seed()  # from os.urandom, read now
    forget_container_state()


def _register_hooks() -> bool:
    try:
        runtime_hooks = importlib.import_module("snapshot_restore_py")
    except ModuleNotFoundError:  # not in Lambda's runtime: nothing is ever snapshotted
        return False
    runtime_hooks.register_before_snapshot(warm_before_snapshot)
    runtime_hooks.register_after_restore(restore_uniqueness)
    return True


HOOKS_REGISTERED = _register_hooks()
