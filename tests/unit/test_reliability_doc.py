"""docs/RELIABILITY.md states the figures the reliability tests run with."""

from propsync_local.cfn_template import REPO_ROOT
from tests.api import test_fuzz_routes
from tests.imports import test_fuzz_imports
from tests.integration import test_concurrency, test_concurrency_handlers

DOC = (REPO_ROOT / "docs" / "RELIABILITY.md").read_text()


def test_concurrency_figures():
    assert f"| {test_concurrency.WRITERS} threads |" in DOC
    handlers = test_concurrency_handlers
    assert f"| {handlers.WRITER_PROCESSES} processes," in DOC
    assert (
        f"{handlers.WRITER_PROCESSES} x {handlers.BATCHES_PER_WRITER} batches x "
        f"{handlers.COMMANDS_PER_BATCH} commands on {len(handlers.CUSTOMERS)} customers"
    ) in DOC
    assert f"| {handlers.IMPORT_ROWS} rows on the same" in DOC


def test_fuzz_figures():
    assert f"| {test_fuzz_routes.FUZZ.max_examples} per route |" in DOC
    assert f"| {test_fuzz_imports.FUZZ.max_examples} per test |" in DOC


def test_both_engines_are_named():
    from tests.conftest import ENGINES  # noqa: PLC0415

    assert all(engine in DOC for engine in ENGINES)


def test_bad_input_case_count():
    from tests.api import test_bad_input  # noqa: PLC0415

    cases = (
        len(test_bad_input.BATCH_BODIES)
        + 1  # the request over 6 MB
        + len(test_bad_input.BAD_COMMANDS)
        + len(test_bad_input.SINGLE_ROUTE)
        + len(test_bad_input.PRIVATE_BODIES)
    )
    assert f"| {cases} cases |" in DOC


def test_hostile_import_figures():
    from propsync import imports, limits  # noqa: PLC0415
    from propsync_local.cfn_template import load_template  # noqa: PLC0415
    from tests.imports import test_import_failures, test_import_keys  # noqa: PLC0415
    from tests.unit import test_import_mapping  # noqa: PLC0415

    assert f"| a bad row | {len(test_import_failures.BAD_ROWS)}: " in DOC
    assert f"| {test_import_failures.CLASS.max_examples} per test |" in DOC
    assert (
        f"| {test_import_keys.KEYS.max_examples} keys, and "
        f"{test_import_keys.IMPORT_NAMES.max_examples} through the handler |"
    ) in DOC
    assert f"| {test_import_mapping.CELLS.max_examples} cells |" in DOC
    assert f"at most {limits.MAX_PLAN_BYTES // 1024} KB of the 400 KB" in DOC
    assert f"over {limits.MAX_MAPPING_BYTES // 1024} KB" in DOC
    assert f"keys over {imports.MAX_DATA_KEY_BYTES} bytes" in DOC
    redrive = load_template()["Resources"]["ChunkQueue"]["Properties"]["RedrivePolicy"]
    assert (
        f"given up on receive {imports.LAST_ATTEMPT_RECEIVE} of the queue's "
        f"{redrive['maxReceiveCount']}"
    ) in DOC
    assert f"failed on receive {imports.LAST_ATTEMPT_RECEIVE}, named" in DOC
    assert f"failed unrun on receive {imports.GIVE_UP_RECEIVE}" in DOC
