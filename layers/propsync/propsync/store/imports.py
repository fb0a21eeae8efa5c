"""Import executions: one item per execution (``import#<id>``) with its plan
and counts, and a pointer from each file to its newest execution."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from propsync.container import per_container
from propsync.store.dynamo import (
    Item,
    client_and_table_from_environment,
    is_conditional_failure,
    number,
)

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient

COUNTERS = (
    "rows_read",
    "rows_written",
    "rows_rejected",
    "properties_applied",
    "properties_stale",
    "rows_erased",
    "bytes_done",
)


def execution_key(execution_id: str) -> str:
    return f"import#{execution_id}"


def encode_plan(plan: dict[str, Any]) -> str:
    """The plan as the execution record stores it (compact JSON, ASCII)."""
    return json.dumps(plan, separators=(",", ":"))


@dataclass(frozen=True)
class ExecutionRecord:
    """An import execution as stored; ``plan`` holds what every chunk needs
    (mapping, header, delimiter) so all chunks use the same ones."""

    execution_id: str
    project: str
    file_key: str
    status: str
    started_at: float
    chunks_total: int
    bytes_total: int
    done_chunks: frozenset[int]
    counters: dict[str, int]
    progress_rows: int
    progress_bytes: int
    plan: dict[str, Any]
    problems: list[str]
    finished_at: float | None
    # chunks given up on (also in done_chunks: they count as done); their
    # errors are in the import's part files, the report names them
    failed_chunks: frozenset[int] = frozenset()

    @property
    def chunks_done(self) -> int:
        return len(self.done_chunks)


class ImportStore:
    """Execution records of imports: the start time fixed once, and counts
    added exactly once per chunk however often a chunk is delivered."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    def start(self, execution_id: str, project: str, file_key: str, now: float) -> ExecutionRecord:
        """Create the record unless it exists; either way return it. The first
        start time stays: a redelivered event or a rerun reuses it."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": execution_key(execution_id)},
                    "project": {"S": project},
                    "file_key": {"S": file_key},
                    "status": {"S": "running"},
                    "started_at": {"N": number(now)},
                    "chunks_total": {"N": "0"},
                    **{name: {"N": "0"} for name in COUNTERS},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            # the newest execution of a file, for whoever uploaded it to follow
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"importfile#{file_key}"},
                    "execution_id": {"S": execution_id},
                    "started_at": {"N": number(now)},
                },
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
        record = self.get(execution_id)
        if record is None:
            raise RuntimeError(f"import execution {execution_id} vanished")
        return record

    def get(self, execution_id: str) -> ExecutionRecord | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            ConsistentRead=True,
        ).get("Item")
        return _execution(item) if item else None

    def latest_for_file(self, file_key: str) -> ExecutionRecord | None:
        """The newest execution started for an object key, if any."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"importfile#{file_key}"}},
            ConsistentRead=True,
        ).get("Item")
        return self.get(item["execution_id"]["S"]) if item else None

    def add_progress(self, execution_id: str, rows: int, bytes_read: int) -> None:
        """Progress while a chunk runs (informational: a retried chunk adds
        again; the report's counts come from complete_chunk only)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression="ADD progress_rows :rows, progress_bytes :bytes",
            ExpressionAttributeValues={":rows": {"N": str(rows)}, ":bytes": {"N": str(bytes_read)}},
        )

    def set_plan(
        self, execution_id: str, plan: dict[str, Any], chunks_total: int, bytes_total: int
    ) -> None:
        """Store the plan (``encode_plan(plan)`` must be at most MAX_PLAN_BYTES)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression="SET #plan = :plan, chunks_total = :chunks, bytes_total = :bytes",
            ExpressionAttributeNames={"#plan": "plan"},
            ExpressionAttributeValues={
                ":plan": {"S": encode_plan(plan)},
                ":chunks": {"N": str(chunks_total)},
                ":bytes": {"N": str(bytes_total)},
            },
        )

    def complete_chunk(
        self, execution_id: str, chunk_index: int, counters: dict[str, int]
    ) -> ExecutionRecord | None:
        """Add a chunk's counts, once. None if the chunk was already counted
        (a redelivered message); else the record after the addition."""
        values: dict[str, Any] = {
            ":chunk": {"SS": [str(chunk_index)]},
            ":idx": {"S": str(chunk_index)},
        }
        adds = ["chunks_done :chunk"]
        for name in COUNTERS:
            values[f":{name}"] = {"N": str(counters.get(name, 0))}
            adds.append(f"{name} :{name}")
        return self._mark_chunk_done(execution_id, "ADD " + ", ".join(adds), values)

    def fail_chunk(self, execution_id: str, chunk_index: int) -> ExecutionRecord | None:
        """Give up on a chunk: it counts as done (so the execution can finish)
        and is listed as failed; its rows add nothing to the counts. Once, as
        complete_chunk: None if the chunk was already done or failed."""
        return self._mark_chunk_done(
            execution_id,
            "ADD chunks_done :chunk, chunks_failed :chunk",
            {":chunk": {"SS": [str(chunk_index)]}, ":idx": {"S": str(chunk_index)}},
        )

    def _mark_chunk_done(
        self, execution_id: str, update: str, values: dict[str, Any]
    ) -> ExecutionRecord | None:
        """``update`` (which adds the chunk ``:idx`` to chunks_done) applied
        once per chunk: None when the chunk was already done or failed."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": execution_key(execution_id)}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND NOT contains(chunks_done, :idx)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return None
        return _execution(response["Attributes"])

    def finish(
        self, execution_id: str, status: str, now: float, problems: list[str] | None = None
    ) -> None:
        values: dict[str, Any] = {":status": {"S": status}, ":now": {"N": number(now)}}
        update = "SET #status = :status, finished_at = :now"
        if problems is not None:
            values[":problems"] = {"L": [{"S": p} for p in problems]}
            update += ", problems = :problems"
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression=update,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )


def _execution(item: Item) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=str(item["pk"]["S"]).removeprefix("import#"),
        project=item["project"]["S"],
        file_key=item["file_key"]["S"],
        status=item["status"]["S"],
        started_at=float(item["started_at"]["N"]),
        chunks_total=int(item.get("chunks_total", {}).get("N", 0)),
        bytes_total=int(item.get("bytes_total", {}).get("N", 0)),
        done_chunks=frozenset(int(i) for i in item.get("chunks_done", {}).get("SS", [])),
        counters={name: int(item.get(name, {}).get("N", 0)) for name in COUNTERS},
        progress_rows=int(item.get("progress_rows", {}).get("N", 0)),
        progress_bytes=int(item.get("progress_bytes", {}).get("N", 0)),
        plan=json.loads(item["plan"]["S"]) if "plan" in item else {},
        problems=[p["S"] for p in item.get("problems", {}).get("L", [])],
        finished_at=float(item["finished_at"]["N"]) if "finished_at" in item else None,
        failed_chunks=frozenset(int(i) for i in item.get("chunks_failed", {}).get("SS", [])),
    )


@per_container
def import_store_from_environment() -> ImportStore:
    return ImportStore(*client_and_table_from_environment())
