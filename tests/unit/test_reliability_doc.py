"""docs/RELIABILITY.md states the figures the reliability tests run with."""

import importlib.util

from propsync import import_rows
from propsync_local.cfn_template import REPO_ROOT
from tests.api import test_authorizer, test_batch_order, test_fuzz_routes
from tests.imports import test_fuzz_imports, test_imports
from tests.integration import test_concurrency, test_concurrency_handlers, test_id_types_store
from tests.unit import test_import_rows

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
    adders = test_id_types_store.ADDERS
    assert (
        f"(`tests/integration/test_id_types_store.py`) | {adders} threads | {adders} different"
        in DOC
    )


def test_erasure_figures():
    from tests.integration import test_erasure as erasure  # noqa: PLC0415

    assert f"| {erasure.WRITERS} threads | {erasure.WRITERS} x {erasure.WRITES_EACH} updates" in DOC


def test_queued_mode_figures():
    from tests.api import test_queued_spikes as spikes  # noqa: PLC0415
    from tests.integration import test_queued_equivalence as equivalence  # noqa: PLC0415

    assert f"{equivalence.EQUIVALENCE.max_examples} examples per engine: 1-5 requests" in DOC
    assert f"on {equivalence.PEOPLE} people" in DOC
    assert f"| {equivalence.APPLIERS} threads applying the messages |" in DOC
    assert f"{equivalence.PARALLEL.max_examples} examples per engine: every message" in DOC
    assert f"while {spikes.BATCHES} batches x {spikes.COMMANDS} commands arrive" in DOC


def test_merge_figures():
    from tests.integration import test_merge_concurrency as merges  # noqa: PLC0415

    assert f"| {merges.WRITERS_PER_SIDE} threads per side (by cookie" in DOC
    assert (
        f"{len(merges.RACES)} races ({', '.join(merges.RACES)}) x {len(merges.SEEDS)} seeds"
    ) in DOC
    assert (
        f"{2 * merges.WRITERS_PER_SIDE} x {merges.UPDATES_PER_WRITER} commands, "
        f"{len(merges.TIMESTAMPS)} timestamps"
    ) in DOC


def test_resolution_plan_figures():
    from tests.unit import test_resolution_plan as plans  # noqa: PLC0415

    assert (
        f"{plans.PLANS.max_examples} situations of up to {len(plans.CUSTOMERS)} customers "
        f"and {len(plans.ID_TYPES)} id types"
    ) in DOC


def test_fuzz_figures():
    assert f"| {test_fuzz_routes.FUZZ.max_examples} per route |" in DOC
    positions = test_fuzz_routes
    assert f"each of {len(positions.POSITIONS)} positions of a customers command" in DOC
    assert f"| {positions.POSITION_FUZZ.max_examples} per position |" in DOC
    assert f"| {test_fuzz_imports.FUZZ.max_examples} per test |" in DOC
    assert f"| {test_authorizer.AUTH.max_examples} per test |" in DOC
    from tests.unit import test_timestamps  # noqa: PLC0415

    assert f"no engine) | {test_timestamps.TIMESTAMP_EXAMPLES} |" in DOC


def test_batch_order_figures():
    order = test_batch_order
    assert f"{order.BATCHES} batches x {order.PAIRS} newer-then-older pairs" in DOC
    assert f"{order.ORDER.max_examples} examples per engine" in DOC


def test_both_engines_are_named():
    from tests.conftest import ENGINES  # noqa: PLC0415

    assert all(engine in DOC for engine in ENGINES)


def test_bad_input_case_count():
    from tests.api import test_bad_input  # noqa: PLC0415

    cases = (
        len(test_bad_input.BATCH_BODIES)
        + 1  # the request over 6 MB
        + len(test_bad_input.BAD_COMMANDS)
        + len(test_bad_input.BAD_ENVELOPES)
        + len(test_bad_input.SINGLE_ROUTE)
        + len(test_bad_input.PRIVATE_BODIES)
        + 1  # the edit over 400 KB
        + len(test_bad_input.ONE_SENTENCE)
        + 1  # the bad command_id named alone
    )
    assert f"| {cases} cases |" in DOC


def test_request_model_figures():
    from tests.unit import test_model_error_order as order  # noqa: PLC0415
    from tests.unit import test_request_schemas as schemas  # noqa: PLC0415

    assert (
        f"| {order.COMMANDS.max_examples} commands, {order.BODIES.max_examples} bodies, "
        f"{order.BODIES.max_examples} bodies on both routes |"
    ) in DOC
    assert f"| {schemas.SCHEMAS.max_examples} per route | 3,000 per route:" in DOC


def test_import_file_figures():
    rows = test_import_rows
    assert f"| {rows.BOUNDARIES.max_examples} files per run," in DOC
    assert f"| {rows.ROW_LIMITS.max_examples} files per run;" in DOC
    assert f"| {rows.FORMULAS.max_examples} per run;" in DOC
    assert f"one {rows.LONG_LINE_MB} MB row" in DOC
    assert f"traced peak of {rows.READ_PEAK_MIB} MiB" in DOC
    imports = test_imports
    chunk_sizes = " and ".join(str(size) for size in imports.AWKWARD_CHUNK_BYTES)
    assert f"{imports.AWKWARD_ROWS} rows in chunks of {chunk_sizes} bytes" in DOC
    assert f"gzipped {imports.GZIPPED_LINE_MB} MB line" in DOC
    assert f"execution {imports.IMPORT_PEAK_MIB} MiB" in DOC
    assert f"the limit: {import_rows.MAX_ROW_BYTES:,} bytes" in DOC


def test_hostile_import_figures():
    from propsync import imports, limits  # noqa: PLC0415
    from propsync_local.cfn_template import load_template  # noqa: PLC0415
    from tests.imports import test_import_failures, test_import_keys  # noqa: PLC0415
    from tests.unit import test_import_mapping, test_mapping_model  # noqa: PLC0415

    assert f"| a bad row | {len(test_import_failures.BAD_ROWS)}: " in DOC
    assert f"| {test_import_failures.CLASS.max_examples} per test |" in DOC
    assert (
        f"| {test_import_keys.KEYS.max_examples} keys, and "
        f"{test_import_keys.IMPORT_NAMES.max_examples} through the handler |"
    ) in DOC
    assert f"| {test_import_mapping.CELLS.max_examples} cells |" in DOC
    assert (
        f"| {test_mapping_model.MUTATED.max_examples} mappings, "
        f"{test_mapping_model.MAPPING_FILES.max_examples} files |"
    ) in DOC
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


def test_mutation_scope_and_bar():
    spec = importlib.util.spec_from_file_location("mutate", REPO_ROOT / "scripts" / "mutate.py")
    assert spec is not None
    assert spec.loader is not None
    mutate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutate)
    for module in mutate.SCOPE:
        assert f"| `{module}` |" in DOC
    assert f"the run fails under {mutate.MIN_KILL_RATE:.0%}" in DOC


def test_cli_figures():
    from tests.api import test_cli  # noqa: PLC0415

    assert (
        f"| {test_cli.TOKEN_EXAMPLES} tokens per command, {test_cli.HEADER_EXAMPLES} headers |"
    ) in DOC
    assert f"of each of its {len(test_cli.PROJECT_COMMANDS)} commands" in DOC


def test_import_routes_figures():
    from tests.api import test_imports_api as routes  # noqa: PLC0415
    from tests.unit import test_s3_post_policy as policy  # noqa: PLC0415

    bad = (
        routes.test_a_preview_body_that_breaks_a_rule_is_400,
        routes.test_a_start_that_breaks_a_rule_is_400_with_every_problem_and_writes_nothing,
        routes.test_a_start_body_of_the_wrong_shape_is_400_and_writes_nothing,
        routes.test_hostile_query_values_are_400,
        routes.test_an_unknown_execution_is_404,
    )
    cases = sum(len(test.pytestmark[0].args[1]) for test in bad)
    assert f"hostile `file_key`, `limit`, `next` and execution ids) | {cases} cases |" in DOC
    fuzz = test_fuzz_routes.IMPORT_FUZZ.max_examples
    assert f"a preview nothing at all) | {fuzz} per route |" in DOC
    forms, conditions = policy.FORMS.max_examples, policy.CONDITIONS.max_examples
    assert f"| {forms} forms, {conditions} condition lists |" in DOC
    origins = policy.ORIGINS.max_examples
    assert f"| {forms} forms with origins, {origins} origins |" in DOC
