"""An import whose rejected rows outgrow the chunk function's /tmp (512 MB
by default, no EphemeralStorage) or one PutObject (5 GB) still ends with its
report and every rejected row. Rejected rows are up to 26 times their CSV
("x\\n" becomes the line, the reason and the quoted cell), so 20 MB of short
bad rows, a 1 GiB .csv.gz that decompresses to them from a 1 MB upload, or
a large file with a mapping that rejects every row, would fill it: the
report joins the chunks' rejected rows in S3, a part at a time
(ImportBucket.put_joined), never in a temporary file. Simulated here with a
small disk and small parts (S3's least, 5 MiB)."""

from __future__ import annotations

import errno
import tempfile

from propsync import bucket as bucket_module
from propsync import imports as imports_module

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
DISK = 4_000_000  # bytes a temporary file may hold (512 MB on Lambda)
ROWS = 250_000


class SmallDisk(tempfile.SpooledTemporaryFile):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.written = 0

    def write(self, data):
        self.written += len(data)
        if self.written > DISK:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_rejected_rows_larger_than_the_disk_still_end_with_a_report(imports, monkeypatch):
    monkeypatch.setattr(imports_module.tempfile, "SpooledTemporaryFile", SmallDisk)
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", "100000")
    monkeypatch.setattr(bucket_module, "JOINED_PART_BYTES", 5 << 20)
    imports.put_mapping("rej", MAPPING)
    parts: list[int] = []
    imports.s3.meta.events.register(
        "provide-client-params.s3.UploadPart",
        lambda params, **_: parts.append(params["PartNumber"]),
    )
    data = b"id,n\n" + b"x\n" * ROWS  # 500 KB: each chunk's rejects fit, all of them do not
    record, _ = imports.drop("rej", "r.csv", data, run_chunks=False)
    for receive in range(1, imports_module.GIVE_UP_RECEIVE + 1):
        messages = imports.messages()
        if not messages:
            break
        for message in messages:
            try:
                imports.deliver_messages([message], receive)
            except Exception:
                imports.services.queue.send([message])  # SQS delivers it again
    record = imports.services.imports.get(record.execution_id)
    assert record.status != "running"
    report = imports.report("rej", "r.csv")
    assert (report["status"], report["rows_rejected"]) == ("failed", ROWS)
    rejected = imports.rejected("rej", "r.csv")
    assert len(rejected) > max(DISK, 2 * bucket_module.JOINED_PART_BYTES)
    assert parts == [1, 2, 3]  # a multipart upload of three parts
    lines = rejected.splitlines()
    assert lines[0] == b'"line","reason","id","n"'
    assert lines[1].startswith(b'"2",')
    assert lines[-1].startswith(b'"%d",' % (ROWS + 1))
    assert len(lines) == ROWS + 1
