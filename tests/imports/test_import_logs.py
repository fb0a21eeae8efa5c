"""Every log line of an import carries its execution id, as Lambda writes it
(the functions' Powertools formatter), whichever module or write thread logs
it; a line logged after the import does not."""

import io
import json
import logging

import pytest

from propsync import imports as imports_module
from propsync import observability
from propsync.imports import execution_id_for, execution_logged
from propsync_local.apigw import LambdaContext, load_handler
from tests.conftest import PROJECT
from tests.imports.test_import_handlers import s3_event, sqs_event

MAPPING = {
    "properties": [{"from_column": "name", "to_property": "name", "type": "string"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}


@pytest.fixture
def log_lines(caplog):
    """The lines the functions' logger writes, as JSON objects."""
    caplog.set_level(logging.INFO, logger=observability.logger.service)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.logger.registered_formatter)
    propsync_logger = logging.getLogger(observability.logger.service)
    propsync_logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    propsync_logger.removeHandler(handler)


def drop(imports, key, body, sequencer):
    etag = imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=body)["ETag"]
    event = s3_event(key, sequencer, imports.bucket, etag)
    load_handler("ImportFunction")(event, LambdaContext("ImportFunction"))
    return event


def test_every_line_of_an_execution_and_its_chunks_carries_its_execution_id(
    environment, monkeypatch, log_lines
):
    imports = environment
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "40")
    real_write = imports_module.write_update

    def write_update(store, project, ids, *args, **kwargs):
        if ids["registered"].startswith("bad"):  # a defect's error, logged from a write thread
            raise RuntimeError("unexpected")
        return real_write(store, project, ids, *args, **kwargs)

    monkeypatch.setattr(imports_module, "write_update", write_update)
    imports.put_mapping("big", MAPPING)
    imports.put_mapping("broken", {"ids": []})
    big = f"imports/{PROJECT}/big/big.csv"
    rows = b"".join(b"%s%d,Name %d\n" % (b"bad" if i % 7 == 3 else b"c", i, i) for i in range(30))
    started = drop(imports, big, b"id,name\n" + rows, "00B2")
    messages = imports.messages()
    load_handler("ImportChunkFunction")(
        sqs_event([*messages, {"execution_id": "no-such-execution", "chunk": 0}]),
        LambdaContext("ImportChunkFunction"),
    )
    while messages := imports.messages():  # the next chunks of its lanes
        load_handler("ImportChunkFunction")(sqs_event(messages), LambdaContext("f"))
    load_handler("ImportFunction")(started, LambdaContext("ImportFunction"))  # redelivered
    broken = f"imports/{PROJECT}/broken/x.csv"
    drop(imports, broken, b"id,name\nm1,M\n", "00C3")
    drop(imports, "imports/x.csv", b"id\nm1\n", "00D4")  # no project part: refused in the log
    logging.getLogger("propsync.imports").info("after the imports")

    lines = log_lines()
    logged = {(line["message"], line.get("execution_id")) for line in lines}
    ids = {
        key: execution_id_for(imports.bucket, key, sequencer)
        for key, sequencer in ((big, "00B2"), (broken, "00C3"), ("imports/x.csv", "00D4"))
    }
    for expected in [
        ("row rejected by an unexpected error", ids[big]),  # from a write thread
        ("import chunk done", ids[big]),
        ("import finished", ids[big]),
        ("chunk failed", "no-such-execution"),
        ("execution already finished", ids[big]),
        ("import failed before any row", ids[broken]),
        ("import key refused", ids["imports/x.csv"]),
        ("after the imports", None),
    ]:
        assert expected in logged, expected
    during = [line for line in lines if line["message"] != "after the imports"]
    assert [line for line in during if "execution_id" not in line] == []


def test_a_nested_execution_scope_gives_the_outer_id_back(log_lines):
    """A one-chunk import runs its chunk inside its start: after the chunk,
    the start's lines still carry the start's id; after both, none."""
    log = logging.getLogger("propsync.imports").info
    with execution_logged("outer"):
        log("a")
        with execution_logged("inner"):
            log("b")
        log("c")
    log("d")
    assert [(line["message"], line.get("execution_id")) for line in log_lines()] == [
        ("a", "outer"),
        ("b", "inner"),
        ("c", "outer"),
        ("d", None),
    ]
