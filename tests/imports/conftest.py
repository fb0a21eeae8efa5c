"""What the import handlers' tests share."""

import pytest

from tests.support.api import reset_service_caches


@pytest.fixture
def environment(imports, table_name, monkeypatch):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", table_name)
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    monkeypatch.setenv("PROPSYNC_CHUNK_QUEUE_URL", imports.services.queue.url)
    reset_service_caches()
    yield imports
    reset_service_caches()
