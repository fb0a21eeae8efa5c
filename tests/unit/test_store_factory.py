import pytest

from propsync.store import access as access_store_module
from propsync.store import customers as customer_store_module
from propsync.store import dynamo as dynamo_module


@pytest.fixture(autouse=True)
def _fresh_factory():
    caches = (
        customer_store_module.store_from_environment,
        access_store_module.access_store_from_environment,
        dynamo_module.client_and_table_from_environment,
    )
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


def test_the_table_name_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", "my-table")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:4566")
    store = customer_store_module.store_from_environment()
    assert store._table == "my-table"
    assert store._client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert store._client.meta.config.retries["mode"] == "standard"
    # client-side parameter validation is off (botocore's meta.config does not
    # show it; the serializer is simply not wrapped by the validator)
    assert type(store._client._serializer).__name__ != "ParamValidationDecorator"
    assert customer_store_module.store_from_environment() is store  # one client per container


def test_a_missing_table_name_fails_with_a_clear_message(monkeypatch):
    monkeypatch.delenv("PROPSYNC_TABLE_NAME", raising=False)
    with pytest.raises(RuntimeError, match="PROPSYNC_TABLE_NAME is not set"):
        customer_store_module.store_from_environment()
