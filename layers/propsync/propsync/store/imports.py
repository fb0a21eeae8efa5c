"""Import executions: one item per execution (``import#<id>``) with its plan
and counts, and a pointer from each file to its newest execution. The index
EXECUTIONS_INDEX (template.yaml) lists a project's executions, newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from propsync.container import per_container
from propsync.store.dynamo import (
    BATCH_GET_MAX_KEYS,
    Item,
    batch_get,
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
    # wall time the chunk's writes waited on DynamoDB's throttling (store.throttling)
    "throttled_ms",
)


# template.yaml's global secondary index of PropsyncTable: partition `project`,
# sort `started_at`, keys only. Only execution items carry both attributes.
EXECUTIONS_INDEX = "ExecutionsByProject"
_EXECUTION_PREFIX = "import#"
# Every attribute of an execution item but its plan (up to 200 KB): what a
# list or a status needs. ``status`` is one of DynamoDB's reserved words, so
# every name goes through ExpressionAttributeNames.
_SUMMARY_ATTRIBUTES = (
    "pk",
    "project",
    "file_key",
    "status",
    "started_at",
    "chunks_total",
    "bytes_total",
    "chunks_done",
    *COUNTERS,
    "progress_rows",
    "progress_bytes",
    "progress_throttled_ms",
    "problems",
    "finished_at",
    "chunks_failed",
    "report_key",
    "running_since",
)
_SUMMARY_PROJECTION: dict[str, Any] = {
    "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(_SUMMARY_ATTRIBUTES))),
    "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(_SUMMARY_ATTRIBUTES)},
}


def execution_key(execution_id: str) -> str:
    return f"{_EXECUTION_PREFIX}{execution_id}"


@dataclass(frozen=True)
class ExecutionPosition:
    """Where a page of a project's executions ended: the last execution's id
    and its start time as DynamoDB stores it (the exact number text), which
    the next page's query starts after."""

    execution_id: str
    started_at: str


@dataclass(frozen=True)
class ExecutionPage:
    """Executions of one project, newest first, without their plans
    (``plan`` is ``{}``); ``last`` is None when no execution is older."""

    executions: list[ExecutionRecord]
    last: ExecutionPosition | None


def encode_plan(plan: dict[str, Any]) -> str:
    """The plan as the execution record stores it (compact JSON, ASCII)."""
    return json.dumps(plan, separators=(",", ":"))


@dataclass(frozen=True)
class ExecutionProgress:
    """How far an execution has read its file: rows and bytes read, of
    ``bytes_total``; ``fraction`` is 1.0 once it finished."""

    rows: int
    bytes: int
    bytes_total: int
    fraction: float


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
    # where the report was written, once finished (None: still running, or
    # finished before records named it)
    report_key: str | None = None
    progress_throttled_ms: int = 0
    # chunks whose message was sent to the chunk queue (ImportStore.mark_sent)
    sent_chunks: frozenset[int] = frozenset()
    # when the execution's first chunk started to run (None: none has yet);
    # the time between started_at and this is the wait in the chunk queue
    running_since: float | None = None
    # where each chunk that checkpointed goes on: (byte, line, last line
    # done), as ImportStore.checkpoint_chunk stored it
    resume_points: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    # the pieces of chunks counted ("<chunk>:<label>"): a piece's part files
    # go into the report only if it was counted
    counted_pieces: frozenset[str] = frozenset()

    @property
    def throttled_seconds(self) -> float:
        """Time the chunks' writes waited on throttling, summed over the
        chunks (as the running chunks report it, or as the chunks done
        counted it, whichever is more)."""
        return max(self.progress_throttled_ms, self.counters["throttled_ms"]) / 1000

    @property
    def queued_seconds(self) -> float:
        """How long the execution waited in the chunk queue before its first
        chunk ran (0 while none has run, or if none ever had to)."""
        if self.running_since is None:
            return 0.0
        return max(self.running_since - self.started_at, 0.0)

    def rows_per_second(self, now: float) -> float:
        """Rows read per second since the first chunk started to run (the
        wait in the queue is not the import's pace: queued_seconds); once
        finished, the rows its report counts over that run (as the report
        says it: a redelivered chunk reports its progress twice, but is
        counted once). 0 while no chunk has run."""
        if self.finished_at is not None:
            # (an execution finished before records kept running_since: from its start)
            since = self.started_at if self.running_since is None else self.running_since
            rows, elapsed = self.counters["rows_read"], self.finished_at - since
        elif self.running_since is None:
            return 0.0
        else:
            rows, elapsed = self.progress.rows, now - self.running_since
        return rows / elapsed if elapsed > 0 else 0.0

    @property
    def chunks_done(self) -> int:
        return len(self.done_chunks)

    @property
    def progress(self) -> ExecutionProgress:
        """Progress as the running chunks report it every few seconds, or as
        the chunks done counted it, whichever is further (a retried chunk
        reports its rows again, so never more than the file has)."""
        total = self.bytes_total
        done = max(self.progress_bytes, self.counters["bytes_done"])
        done = min(done, total) if total else 0
        if self.status != "running" and total:
            done = total
        rows = max(self.progress_rows, self.counters["rows_read"])
        fraction = done / total if total else 0.0
        if self.status != "running":
            fraction = 1.0
        return ExecutionProgress(rows, done, total, fraction)


class ImportStore:
    """Execution records of imports: the start time fixed once, and counts
    added exactly once per chunk however often a chunk is delivered."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name

    def start(
        self,
        execution_id: str,
        project: str,
        file_key: str,
        now: float,
        *,
        unless_newer: bool = False,
    ) -> ExecutionRecord:
        """Create the record unless it exists; either way return it. The first
        start time stays: a redelivered event or a rerun reuses it. A record
        created here becomes the file's newest execution; with
        ``unless_newer``, only if the file has none started after ``now`` (a
        failed planning recorded late must not hide a newer upload's)."""
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
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
        else:
            self._point_file_at(file_key, execution_id, now, unless_newer=unless_newer)
        record = self.get(execution_id)
        if record is None:
            raise RuntimeError(f"import execution {execution_id} vanished")
        return record

    def _point_file_at(
        self, file_key: str, execution_id: str, started_at: float, *, unless_newer: bool
    ) -> None:
        """The newest execution of a file, for whoever uploaded it to follow."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": f"importfile#{file_key}"},
                "execution_id": {"S": execution_id},
                "started_at": {"N": number(started_at)},
            },
        }
        if unless_newer:
            request["ConditionExpression"] = "attribute_not_exists(pk) OR started_at <= :at"
            request["ExpressionAttributeValues"] = {":at": {"N": number(started_at)}}
        try:
            self._client.put_item(**request)
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def get(self, execution_id: str, *, with_plan: bool = True) -> ExecutionRecord | None:
        """The execution, read consistently; ``with_plan=False`` leaves its
        plan (up to 200 KB) unread: ``plan`` is ``{}`` (a status or a list)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            ConsistentRead=True,
            **({} if with_plan else _SUMMARY_PROJECTION),
        ).get("Item")
        return _execution(item) if item else None

    def latest_for_file(self, file_key: str, *, with_plan: bool = True) -> ExecutionRecord | None:
        """The newest execution started for an object key, if any."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"importfile#{file_key}"}},
            ConsistentRead=True,
        ).get("Item")
        return self.get(item["execution_id"]["S"], with_plan=with_plan) if item else None

    def list_for_project(
        self, project: str, limit: int, after: ExecutionPosition | None = None
    ) -> ExecutionPage:
        """Up to ``limit`` (1 to 100) executions of ``project``, newest first,
        starting after ``after`` (a page's ``last``). The index holds keys
        only: one Query finds the page's executions, one BatchGetItem reads
        them, leaving out their plans. The index is eventually consistent: an
        execution started a moment ago may show only on a later call
        (``latest_for_file`` reads a file's newest one consistently)."""
        if not 1 <= limit <= BATCH_GET_MAX_KEYS:
            raise ValueError(f"limit must be 1 to {BATCH_GET_MAX_KEYS}, not {limit}")
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": EXECUTIONS_INDEX,
            "KeyConditionExpression": "#project = :project",
            "ExpressionAttributeNames": {"#project": "project"},
            "ExpressionAttributeValues": {":project": {"S": project}},
            "ScanIndexForward": False,  # newest first
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {
                "pk": {"S": execution_key(after.execution_id)},
                "project": {"S": project},
                "started_at": {"N": after.started_at},
            }
        response = self._client.query(**request)
        keys = [item["pk"]["S"] for item in response.get("Items", [])]
        items: dict[str, Item] = {}
        if keys:
            read = {
                self._table: {
                    "Keys": [{"pk": {"S": key}} for key in keys],
                    "ConsistentRead": True,
                    **_SUMMARY_PROJECTION,
                }
            }
            items = {item["pk"]["S"]: item for item in batch_get(self._client, self._table, read)}
        last_key = response.get("LastEvaluatedKey")
        last = None
        if last_key:
            last = ExecutionPosition(
                execution_id=last_key["pk"]["S"].removeprefix(_EXECUTION_PREFIX),
                started_at=last_key["started_at"]["N"],
            )
        # in the query's order; an execution is never deleted, so all are found
        return ExecutionPage([_execution(items[key]) for key in keys if key in items], last)

    def add_progress(
        self, execution_id: str, rows: int, bytes_read: int, throttled_ms: int = 0
    ) -> None:
        """Progress while a chunk runs (informational: a retried chunk adds
        again; the report's counts come from complete_chunk only)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression=(
                "ADD progress_rows :rows, progress_bytes :bytes, progress_throttled_ms :throttled"
            ),
            ExpressionAttributeValues={
                ":rows": {"N": str(rows)},
                ":bytes": {"N": str(bytes_read)},
                ":throttled": {"N": str(throttled_ms)},
            },
        )

    def mark_running(self, execution_id: str, now: float) -> None:
        """A chunk starts to run: the first such time is the execution's
        ``running_since`` (a later chunk or a rerun keeps it)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression="SET running_since = if_not_exists(running_since, :now)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":now": {"N": number(now)}},
        )

    def mark_sent(self, execution_id: str, chunk_indexes: list[int]) -> None:
        """Record that these chunks' messages are on the chunk queue (after
        they were sent: a crash between the two sends them again, which the
        chunks' once-only counting makes harmless, rather than never)."""
        if not chunk_indexes:
            return
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": execution_key(execution_id)}},
            UpdateExpression="ADD chunks_sent :chunks",
            ExpressionAttributeValues={":chunks": {"SS": [str(i) for i in chunk_indexes]}},
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
        self,
        execution_id: str,
        chunk_index: int,
        counters: dict[str, int],
        *,
        resumed_from: tuple[int, int, int] | None = None,
        piece: str | None = None,
    ) -> ExecutionRecord | None:
        """Add the counts of a chunk's last piece (its only one, unless it
        checkpointed), once: only if the chunk still goes on from
        ``resumed_from`` (None: from its planned start), as this run found it.
        None if the chunk was already counted (a redelivered message) or
        another run moved it on; else the record after the addition."""
        values: dict[str, Any] = {
            ":chunk": {"SS": [str(chunk_index)]},
            ":idx": {"S": str(chunk_index)},
        }
        adds = ["chunks_done :chunk"]
        if piece is not None:
            values[":piece"] = {"SS": [f"{chunk_index}:{piece}"]}
            adds.append("chunk_pieces :piece")
        for name in COUNTERS:
            values[f":{name}"] = {"N": str(counters.get(name, 0))}
            adds.append(f"{name} :{name}")
        names, condition = _resumed_from(chunk_index, resumed_from, values)
        return self._mark_chunk_done(
            execution_id, "ADD " + ", ".join(adds), values, names=names, condition=condition
        )

    def checkpoint_chunk(
        self,
        execution_id: str,
        chunk_index: int,
        counters: dict[str, int],
        *,
        resumed_from: tuple[int, int, int] | None,
        resume_at: tuple[int, int, int],
        piece: str,
    ) -> bool:
        """Add the counts of a piece of a chunk that stops before its end
        (its invocation's time runs out) and record where the chunk goes on,
        once: only if it still goes on from ``resumed_from``, as for
        complete_chunk. False if the chunk was counted or moved on meanwhile
        (by a copy of its message run at the same time)."""
        values: dict[str, Any] = {
            ":idx": {"S": str(chunk_index)},
            ":piece": {"SS": [f"{chunk_index}:{piece}"]},
            ":at": {"S": _point(resume_at)},
        }
        adds = ["chunk_pieces :piece"]
        for name in COUNTERS:
            values[f":{name}"] = {"N": str(counters.get(name, 0))}
            adds.append(f"{name} :{name}")
        names, condition = _resumed_from(chunk_index, resumed_from, values)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": execution_key(execution_id)}},
                UpdateExpression=f"SET #resume = :at ADD {', '.join(adds)}",
                ConditionExpression=(
                    f"attribute_exists(pk) AND NOT contains(chunks_done, :idx) AND {condition}"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return False
        return True

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
        self,
        execution_id: str,
        update: str,
        values: dict[str, Any],
        *,
        names: dict[str, str] | None = None,
        condition: str | None = None,
    ) -> ExecutionRecord | None:
        """``update`` (which adds the chunk ``:idx`` to chunks_done) applied
        once per chunk, and only where ``condition`` holds too: None when the
        chunk was already done or failed, or the condition did not hold."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": execution_key(execution_id)}},
            "UpdateExpression": update,
            "ConditionExpression": "attribute_exists(pk) AND NOT contains(chunks_done, :idx)"
            + (f" AND {condition}" if condition else ""),
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            response = self._client.update_item(**request)
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return None
        return _execution(response["Attributes"])

    def finish(
        self,
        execution_id: str,
        status: str,
        now: float,
        problems: list[str] | None = None,
        *,
        report_key: str,
        unless_queued: bool = False,
    ) -> bool:
        """Close the record, naming where its report was written (the file's
        report key, or the key of its own when the file was uploaded again).
        True if this call finished a running execution; False if it was
        finished already (a second finalize rewrites the same report). With
        ``unless_queued``, only a running execution none of whose chunks
        was queued (ImportStore.mark_sent): False if it is finished, or its
        chunks were queued (they finish it)."""
        values: dict[str, Any] = {
            ":status": {"S": status},
            ":now": {"N": number(now)},
            ":report": {"S": report_key},
        }
        update = "SET #status = :status, finished_at = :now, report_key = :report"
        if problems is not None:
            values[":problems"] = {"L": [{"S": p} for p in problems]}
            update += ", problems = :problems"
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": execution_key(execution_id)}},
            "UpdateExpression": update,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_OLD",  # the status before: was it running?
        }
        if unless_queued:
            request["ConditionExpression"] = (
                "#status = :running AND attribute_not_exists(chunks_sent)"
            )
            values[":running"] = {"S": "running"}
        try:
            before = self._client.update_item(**request).get("Attributes", {})
        except ClientError as error:
            if not unless_queued or not is_conditional_failure(error):
                raise
            return False
        return before.get("status", {}).get("S") == "running"


_RESUME_PREFIX = "resume_"


def _point(point: tuple[int, int, int]) -> str:
    return ",".join(map(str, point))


def _resumed_from(
    chunk_index: int, resumed_from: tuple[int, int, int] | None, values: dict[str, Any]
) -> tuple[dict[str, str], str]:
    """The condition that a chunk still goes on where a run found it: its
    resume point unchanged (none yet: from its planned start)."""
    names = {"#resume": f"{_RESUME_PREFIX}{chunk_index}"}
    if resumed_from is None:
        return names, "attribute_not_exists(#resume)"
    values[":from"] = {"S": _point(resumed_from)}
    return names, "#resume = :from"


def _resume_points(item: Item) -> dict[int, tuple[int, int, int]]:
    points = {}
    for name, value in item.items():
        if name.startswith(_RESUME_PREFIX):
            start, line, done = (int(part) for part in value["S"].split(","))
            points[int(name.removeprefix(_RESUME_PREFIX))] = (start, line, done)
    return points


def _execution(item: Item) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=str(item["pk"]["S"]).removeprefix(_EXECUTION_PREFIX),
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
        report_key=item["report_key"]["S"] if "report_key" in item else None,
        progress_throttled_ms=int(item.get("progress_throttled_ms", {}).get("N", 0)),
        sent_chunks=frozenset(int(i) for i in item.get("chunks_sent", {}).get("SS", [])),
        running_since=float(item["running_since"]["N"]) if "running_since" in item else None,
        resume_points=_resume_points(item),
        counted_pieces=frozenset(item.get("chunk_pieces", {}).get("SS", [])),
    )


@per_container
def import_store_from_environment() -> ImportStore:
    return ImportStore(*client_and_table_from_environment())
