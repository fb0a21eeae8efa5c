"""A project's id types on its project item: the defaults a new project gets,
a project from before id types, adding one (conditionally: concurrent
additions never undo each other, kinds never change), and the per-container
cache that keeps them off the tracking path's requests."""

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from propsync import id_type_cache
from propsync.errors import IdTypeKindError, InvalidCustomerIdsError, UnknownProjectError
from propsync.id_types import (
    DEFAULT_ID_TYPES,
    IdTypes,
)
from propsync.store.access import AccessStore, project_key
from tests.conftest import PROJECT

OTHER = "11111111-1111-1111-1111-111111111111"
ADDERS = 8  # threads adding id types at once (docs/RELIABILITY.md)


@pytest.fixture
def access(dynamodb_client, table_name) -> AccessStore:
    return AccessStore(dynamodb_client, table_name)


@pytest.fixture
def legacy_project(dynamodb_client, table_name) -> str:
    """A project item as create_project wrote it before projects had id types."""
    dynamodb_client.put_item(
        TableName=table_name,
        Item={"pk": {"S": project_key(PROJECT)}, "name": {"S": "old"}, "created": {"N": "1"}},
    )
    return PROJECT


def stored_id_types(dynamodb_client, table_name, project=PROJECT):
    item = dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": project_key(project)}}, ConsistentRead=True
    )["Item"]
    return {t: v["S"] for t, v in item["id_types"]["M"].items()} if "id_types" in item else None


def test_a_new_project_stores_the_default_id_types(access, dynamodb_client, table_name):
    assert access.create_project(PROJECT, "shop")
    assert stored_id_types(dynamodb_client, table_name) == {"registered": "hard", "cookie": "soft"}
    assert access.project_id_types(PROJECT) == DEFAULT_ID_TYPES


def test_a_project_from_before_id_types_reads_as_the_defaults(access, legacy_project):
    assert access.project_id_types(legacy_project) == DEFAULT_ID_TYPES


def test_no_project_has_no_id_types(access):
    assert access.project_id_types(OTHER) is None


def test_an_added_id_type_is_stored_beside_the_others(access, dynamodb_client, table_name):
    access.create_project(PROJECT, "shop")
    assert access.add_id_type(PROJECT, "email", hard=False) is True
    assert access.add_id_type(PROJECT, "crm.id", hard=True) is True
    assert access.project_id_types(PROJECT) == IdTypes(
        hard=frozenset({"registered", "crm.id"}), soft=frozenset({"cookie", "email"})
    )
    assert stored_id_types(dynamodb_client, table_name) == {
        "registered": "hard",
        "cookie": "soft",
        "email": "soft",
        "crm.id": "hard",
    }


def test_adding_to_a_project_from_before_id_types_keeps_the_defaults(
    access, legacy_project, dynamodb_client, table_name
):
    assert access.add_id_type(legacy_project, "email", hard=False) is True
    assert stored_id_types(dynamodb_client, table_name) == {
        "registered": "hard",
        "cookie": "soft",
        "email": "soft",
    }
    item = dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": project_key(PROJECT)}}, ConsistentRead=True
    )["Item"]
    assert item["name"] == {"S": "old"}  # the rest of the item is left as it was


def test_adding_an_id_type_that_is_there_with_its_kind_writes_nothing(access, request_log):
    access.create_project(PROJECT, "shop")
    request_log.clear()
    assert access.add_id_type(PROJECT, "cookie", hard=False) is False
    assert request_log.writes == 0


@pytest.mark.parametrize(("id_type", "hard"), [("cookie", True), ("registered", False)])
def test_the_kind_of_an_id_type_is_never_changed(
    access, request_log, dynamodb_client, table_name, id_type, hard
):
    access.create_project(PROJECT, "shop")
    request_log.clear()
    with pytest.raises(IdTypeKindError, match="the kind of an id type cannot change"):
        access.add_id_type(PROJECT, id_type, hard=hard)
    assert request_log.writes == 0
    assert stored_id_types(dynamodb_client, table_name) == {"registered": "hard", "cookie": "soft"}


def test_an_id_type_of_a_project_that_does_not_exist_is_refused_and_creates_nothing(
    access, dynamodb_client, table_name, request_log
):
    with pytest.raises(UnknownProjectError, match="Invalid project id: no project"):
        access.add_id_type(OTHER, "email", hard=False)
    assert request_log.writes == 0
    assert "Item" not in dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": project_key(OTHER)}}
    )


@pytest.mark.parametrize("name", ["", "a#b", "e mail", "x" * 65, "ré"])
def test_a_name_no_id_type_may_have_is_refused_before_any_write(access, request_log, name):
    access.create_project(PROJECT, "shop")
    request_log.clear()
    with pytest.raises(InvalidCustomerIdsError, match="is not allowed: use 1 to 64"):
        access.add_id_type(PROJECT, name, hard=False)
    assert request_log.writes == 0


@pytest.mark.parametrize("legacy", [False, True], ids=["new project", "project from before"])
def test_concurrent_additions_of_different_id_types_all_survive(
    access, dynamodb_client, table_name, legacy
):
    if legacy:
        dynamodb_client.put_item(
            TableName=table_name, Item={"pk": {"S": project_key(PROJECT)}, "name": {"S": "old"}}
        )
    else:
        access.create_project(PROJECT, "shop")
    names = [f"type{i}" for i in range(ADDERS)]
    start = threading.Barrier(len(names))

    def add(name: str) -> bool:
        start.wait()
        return access.add_id_type(PROJECT, name, hard=name.endswith(("0", "1")))

    with ThreadPoolExecutor(len(names)) as pool:
        assert list(pool.map(add, names)) == [True] * len(names)
    assert stored_id_types(dynamodb_client, table_name) == {
        "registered": "hard",
        "cookie": "soft",
        **{name: "hard" if name.endswith(("0", "1")) else "soft" for name in names},
    }


def test_concurrent_additions_of_one_id_type_with_both_kinds_store_one_kind(
    access, dynamodb_client, table_name
):
    access.create_project(PROJECT, "shop")
    start = threading.Barrier(ADDERS)

    def add(hard: bool) -> str:
        start.wait()
        try:
            return "added" if access.add_id_type(PROJECT, "email", hard=hard) else "there"
        except IdTypeKindError:
            return "refused"

    kinds = [True, False] * (ADDERS // 2)
    with ThreadPoolExecutor(len(kinds)) as pool:
        outcomes = list(pool.map(add, kinds))
    assert outcomes.count("added") == 1
    winner = kinds[outcomes.index("added")]
    stored = stored_id_types(dynamodb_client, table_name)["email"]
    assert stored == ("hard" if winner else "soft")
    for hard, outcome in zip(kinds, outcomes, strict=True):
        if outcome != "added":  # the same kind found it there; the other was refused
            assert outcome == ("there" if hard == winner else "refused")


def test_a_project_check_still_costs_one_read_of_the_key_only(access, request_log):
    """The tracking path's project check is not made to read the id types."""
    access.create_project(PROJECT, "shop")
    request_log.clear()
    assert access.project_exists(PROJECT)
    [params] = request_log.params_of("GetItem")
    assert request_log.counts == {"GetItem": 1}
    assert params["ProjectionExpression"] == "pk"


# ---------------------------------------------------------------- the cache


@pytest.fixture
def clock(monkeypatch):
    """id_type_cache's monotonic clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(id_type_cache, "time", SimpleNamespace(monotonic=lambda: now[0]))
    id_type_cache.forget_id_types()
    yield now
    id_type_cache.forget_id_types()


def test_id_types_are_read_once_a_minute_per_container(access, request_log, clock):
    access.create_project(PROJECT, "shop")
    request_log.clear()
    assert id_type_cache.id_types_of(access, PROJECT) == DEFAULT_ID_TYPES
    assert request_log.counts == {"GetItem": 1}

    access.add_id_type(PROJECT, "email", hard=False)
    request_log.clear()
    clock[0] += id_type_cache.ID_TYPES_CACHE_SECONDS - 1
    assert id_type_cache.id_types_of(access, PROJECT) == DEFAULT_ID_TYPES  # not yet
    assert request_log.reads == 0

    clock[0] += 1
    assert id_type_cache.id_types_of(access, PROJECT).kind("email") == "soft"
    assert request_log.counts == {"GetItem": 1}


def test_an_unknown_project_is_refused_and_not_remembered(access, request_log, clock):
    with pytest.raises(UnknownProjectError):
        id_type_cache.id_types_of(access, PROJECT)
    access.create_project(PROJECT, "shop")
    assert id_type_cache.id_types_of(access, PROJECT) == DEFAULT_ID_TYPES


@pytest.mark.parametrize("project", ["not-a-token", "x" * 3000])
def test_a_project_that_is_not_a_token_is_refused_without_a_read(
    access, request_log, clock, project
):
    with pytest.raises(UnknownProjectError, match="Invalid project id"):
        id_type_cache.id_types_of(access, project)
    assert request_log.reads == 0
