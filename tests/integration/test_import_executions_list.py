"""A project's import executions, newest first, a page at a time: one Query of
the keys-only index ExecutionsByProject, then one BatchGetItem of the records
without their plans. Only execution items are in the index (other items with
a project or a start time are not), and another project's executions are
never listed."""

import pytest

from propsync.access import create_api_key
from propsync.store.access import AccessStore
from propsync.store.imports import EXECUTIONS_INDEX, ExecutionPosition, ImportStore
from propsync_local.cfn_template import create_table_kwargs, load_template
from propsync_local.stack import StartupError, add_missing_indexes
from tests.conftest import PROJECT

OTHER = "11111111-1111-1111-1111-111111111111"
BIG_PLAN = {"mapping": {}, "header": ["c"] * 20_000, "delimiter": ",", "chunks": [[0, None, 2]]}


@pytest.fixture
def executions(dynamodb_client, table_name) -> ImportStore:
    return ImportStore(dynamodb_client, table_name)


def start(store: ImportStore, number: int, at: float, project: str = PROJECT) -> str:
    execution_id = f"{number:032x}"
    store.start(execution_id, project, f"imports/{project}/crm/f{number}.csv", at)
    return execution_id


def all_pages(store: ImportStore, project: str, limit: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = store.list_for_project(project, limit, after)
        pages.append([record.execution_id for record in page.executions])
        if page.last is None:
            return pages
        after = page.last
        assert len(pages) < 50, "the pages never end"


def test_the_template_defines_the_index_the_store_queries():
    table = load_template()["Resources"]["PropsyncTable"]["Properties"]
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == EXECUTIONS_INDEX


def test_newest_first_without_the_plan(executions, request_log):
    ids = [start(executions, n, 1_700_000_000 + n) for n in range(3)]
    executions.set_plan(ids[1], BIG_PLAN, 1, 10)
    request_log.clear()
    page = executions.list_for_project(PROJECT, 10)
    assert [r.execution_id for r in page.executions] == ids[::-1]
    assert page.last is None
    assert all(record.plan == {} for record in page.executions)
    assert [r.chunks_total for r in page.executions] == [0, 1, 0]  # the rest is read
    assert [r.started_at for r in page.executions] == [1_700_000_002, 1_700_000_001, 1_700_000_000]
    # one query of the index, one read of the records, which leaves the plan out
    assert request_log.counts == {"Query": 1, "BatchGetItem": 1}
    [query] = request_log.params_of("Query")
    assert query["IndexName"] == EXECUTIONS_INDEX
    [batch] = request_log.params_of("BatchGetItem")
    [read] = batch["RequestItems"].values()
    assert "plan" not in read["ExpressionAttributeNames"].values()
    assert "status" in read["ExpressionAttributeNames"].values()


def test_pages_cover_every_execution_once_in_order(executions):
    ids = [start(executions, n, 1_700_000_000 + n) for n in range(7)]
    assert all_pages(executions, PROJECT, 3) in (
        [ids[6:3:-1], ids[3:0:-1], ids[:1]],
        [ids[6:3:-1], ids[3:0:-1], ids[:1], []],
    )
    assert [e for page in all_pages(executions, PROJECT, 1) for e in page] == ids[::-1]


def test_executions_started_at_the_same_time_are_each_listed_once(executions):
    ids = {start(executions, n, 1_700_000_000.25) for n in range(4)}
    listed = [e for page in all_pages(executions, PROJECT, 1) for e in page]
    assert sorted(listed) == sorted(ids)


def test_another_projects_executions_are_not_listed(executions):
    mine = start(executions, 1, 1_700_000_000)
    start(executions, 2, 1_700_000_001, project=OTHER)
    assert [r.execution_id for r in executions.list_for_project(PROJECT, 10).executions] == [mine]
    # a position taken from the other project's list positions the caller's own
    theirs = executions.list_for_project(OTHER, 10).executions[0]
    after = ExecutionPosition(theirs.execution_id, "1700000001")
    assert [r.execution_id for r in executions.list_for_project(PROJECT, 10, after).executions] == [
        mine
    ]


def test_only_executions_are_in_the_index(executions, dynamodb_client, table_name):
    """An API key has a project, a file's pointer to its newest execution a
    start time: neither is in the index, so a list holds executions only."""
    access = AccessStore(dynamodb_client, table_name)
    access.create_project(PROJECT, "shop")
    create_api_key(access, PROJECT, frozenset())
    execution = start(executions, 1, 1_700_000_000)
    indexed = dynamodb_client.scan(TableName=table_name, IndexName=EXECUTIONS_INDEX)["Items"]
    assert [item["pk"]["S"] for item in indexed] == [f"import#{execution}"]
    kinds = {
        item["pk"]["S"].split("#")[0]
        for item in dynamodb_client.scan(TableName=table_name)["Items"]
    }
    assert {"apikey", "importfile", "import"} <= kinds  # the others are in the table


def test_a_project_without_executions_lists_none(executions):
    assert executions.list_for_project(PROJECT, 5).executions == []
    assert executions.list_for_project(PROJECT, 5).last is None


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_a_limit_outside_one_to_a_hundred_is_refused(executions, limit):
    with pytest.raises(ValueError, match="limit must be 1 to 100"):
        executions.list_for_project(PROJECT, limit)


def test_a_files_newest_execution_reads_without_its_plan(executions):
    execution = start(executions, 1, 1_700_000_000)
    executions.set_plan(execution, BIG_PLAN, 1, 10)
    key = f"imports/{PROJECT}/crm/f1.csv"
    assert executions.latest_for_file(key, with_plan=False).plan == {}
    assert executions.latest_for_file(key).plan == BIG_PLAN


def test_a_table_from_before_the_index_gets_it_with_its_executions(
    dynamodb_client, table_name, executions, engine
):
    """`make run` on a persistent engine keeps its table; it adds the index as
    a stack update would, built from the executions already stored. dynalite
    cannot add an index to a table: the stack stops, saying what to do."""
    old = f"{table_name}-old"
    arguments = create_table_kwargs(load_template(), "PropsyncTable", old)
    without_index = {k: v for k, v in arguments.items() if k != "GlobalSecondaryIndexes"}
    without_index["AttributeDefinitions"] = [{"AttributeName": "pk", "AttributeType": "S"}]
    dynamodb_client.create_table(**without_index)
    dynamodb_client.get_waiter("table_exists").wait(TableName=old, WaiterConfig={"Delay": 0.05})
    try:
        store = ImportStore(dynamodb_client, old)
        execution = start(store, 1, 1_700_000_000)
        if engine == "dynalite":
            with pytest.raises(StartupError, match=r"delete the table .* or point"):
                add_missing_indexes(dynamodb_client, arguments)
            return
        add_missing_indexes(dynamodb_client, arguments)
        add_missing_indexes(dynamodb_client, arguments)  # again: nothing to add
        assert [r.execution_id for r in store.list_for_project(PROJECT, 5).executions] == [
            execution
        ]
    finally:
        dynamodb_client.delete_table(TableName=old)
