"""docs/RELIABILITY.md states the figures the reliability tests run with."""

import importlib.util

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


def test_mutation_scope_and_bar():
    spec = importlib.util.spec_from_file_location("mutate", REPO_ROOT / "scripts" / "mutate.py")
    assert spec is not None
    assert spec.loader is not None
    mutate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutate)
    for module in mutate.SCOPE:
        assert f"| `{module}` |" in DOC
    assert f"the run fails under {mutate.MIN_KILL_RATE:.0%}" in DOC
