"""The procedure docs/OPERATIONS.md ("Imports", a lost chunk message) gives,
on both engines: a chunk message purged from the chunk queue, or removed
from its dead-letter queue by hand, leaves its execution running, and the
S3 event delivered again cannot bring it back (the record's `chunks_sent`
names the chunk, so planning sends nothing). Sending the message of each
lane's first chunk not done does: the import completes, each row once."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from propsync import imports as imports_module

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
ROWS = 80


def lane_heads(item: dict) -> list[int]:
    """The documented rule, on the item as `aws dynamodb get-item` prints it
    (the jq filter of OPERATIONS.md): for each lane (0 to the plan's window),
    its first chunk not in chunks_done."""
    window = json.loads(item["plan"]["S"])["window"]
    total = int(item["chunks_total"]["N"])
    done = {int(chunk) for chunk in item.get("chunks_done", {}).get("SS", [])}
    heads = []
    for lane in range(window):
        waiting = [chunk for chunk in range(lane, total, window) if chunk not in done]
        heads += waiting[:1]
    return heads


@pytest.mark.parametrize("lost_after", [0, 3], ids=["first-messages", "mid-import"])
def test_lost_chunk_messages_are_sent_again_by_lane_head(
    imports, monkeypatch, dynamodb_client, table_name, counted_writes, lost_after
):
    monkeypatch.setenv(imports_module.CHUNK_BYTES_ENV, "100")
    monkeypatch.setenv(imports_module.CONCURRENCY_ENV, "3")
    imports.put_mapping("lost", MAPPING)
    data = b"id,n\n" + b"".join(b"l%03d,%d\n" % (i, i) for i in range(ROWS))
    record, sequencer = imports.drop("lost", "f.csv", data, run_chunks=False)
    assert record.chunks_total > 6
    for _ in range(lost_after):  # some chunks done, each sending the next of its lane
        [first, *rest] = imports.messages()
        imports.deliver_messages([first])
        for message in rest:  # back on the queue, as if never received
            imports.services.queue.send([message])
    lost = imports.messages()  # purged
    assert lost

    # the S3 event again: the record says those chunks were sent, so nothing is
    imports.deliver(record.file_key, sequencer, run_chunks=False)
    assert imports.messages() == []
    assert imports.services.imports.get(record.execution_id).status == "running"

    item = dynamodb_client.get_item(
        TableName=table_name, Key={"pk": {"S": f"import#{record.execution_id}"}}
    )["Item"]
    heads = lane_heads(item)
    assert sorted(heads) == sorted(message["chunk"] for message in lost)
    for chunk in heads:  # aws sqs send-message --message-body '{"execution_id": ..., "chunk": n}'
        imports.services.queue.send([{"execution_id": record.execution_id, "chunk": chunk}])
    imports.run_queue()

    done = imports.services.imports.get(record.execution_id)
    assert done.status == "succeeded"
    assert imports.report("lost", "f.csv")["rows_written"] == ROWS
    assert counted_writes == Counter({f"l{i:03d}": 1 for i in range(ROWS)})


def test_a_chunk_message_sent_again_while_its_own_still_waits_counts_nothing_twice(
    imports, monkeypatch, counted_writes
):
    """Sending a lane head whose message was not lost after all is harmless."""
    monkeypatch.setenv(imports_module.CHUNK_BYTES_ENV, "100")
    imports.put_mapping("lost", MAPPING)
    data = b"id,n\n" + b"".join(b"l%03d,%d\n" % (i, i) for i in range(ROWS))
    record, _ = imports.drop("lost", "f.csv", data, run_chunks=False)
    for chunk in sorted(record.sent_chunks):
        imports.services.queue.send([{"execution_id": record.execution_id, "chunk": chunk}])
    imports.run_queue()

    assert imports.services.imports.get(record.execution_id).status == "succeeded"
    report = imports.report("lost", "f.csv")
    assert (report["rows_read"], report["rows_written"]) == (ROWS, ROWS)
    # a row of a chunk run twice is written twice (the same value, idempotent), counted once
    assert set(counted_writes) == {f"l{i:03d}" for i in range(ROWS)}
