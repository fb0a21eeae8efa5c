"""What the import handlers' tests share."""

from collections import Counter

import pytest

from propsync import imports as imports_module
from tests.support.api import reset_service_caches


@pytest.fixture
def environment(imports, table_name, monkeypatch):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", table_name)
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    monkeypatch.setenv("PROPSYNC_CHUNK_QUEUE_URL", imports.services.queue.url)
    reset_service_caches()
    yield imports
    reset_service_caches()


@pytest.fixture
def counted_writes(monkeypatch) -> Counter[str]:
    """How often each row's registered id was written (the import's row writes)."""
    counted: Counter[str] = Counter()
    real = imports_module.write_update

    def counting(store, project, ids, *args, **kwargs):
        counted[ids["registered"]] += 1
        return real(store, project, ids, *args, **kwargs)

    monkeypatch.setattr(imports_module, "write_update", counting)
    return counted
