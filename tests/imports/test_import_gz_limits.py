""".csv.gz files inside Lambda's limits, on both engines.

A gzipped file is cut into chunks as a .csv file is, by offsets of its
decompressed bytes, which planning finds in one streamed pass; a chunk
decompresses the file from its start to its range and keeps its range only.
A file may have at most PROPSYNC_IMPORT_GZIP_MAX_BYTES bytes, compressed
and decompressed alike (the stack parameter ImportGzipMaxBytes): a larger
one, a gzip bomb included, fails with a report that says the limit and what
to do, and planning stops reading one byte past the limit. The tests make
the limit small through the environment."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import imports as imports_module
from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync.import_rows import plan_chunks, read_layout
from propsync_local import stack
from propsync_local.cfn_template import load_template, resources_of_type
from tests.conftest import PROJECT

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
HEADER = b"id,n\n"


def rows(count: int, start: int = 0) -> bytes:
    return b"".join(b"r%05d,%d\n" % (i, i) for i in range(start, start + count))


def written(imports, registered: str) -> dict | None:
    store = imports.services.customers
    customer_id = find_customer_id(store, PROJECT, "registered", registered)
    return plain_properties(store.read_customer(PROJECT, customer_id)) if customer_id else None


def put_gz(imports, name: str, file_name: str, compressed: bytes) -> str:
    key = f"imports/{PROJECT}/{name}/{file_name}"
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=compressed)
    return key


def assert_refused_for_its_size(imports, name, file_name, record, size_words: str) -> dict:
    """Failed before any row, with a report naming the limit and what to do."""
    limit = imports_module.gzip_max_bytes()
    assert record.status == "failed"
    assert imports.services.imports.get(record.execution_id).status == "failed"
    report = imports.report(name, file_name)
    assert report["status"] == "failed"
    [problem] = report["problems"]
    assert f"{file_name!r} {size_words}" in problem
    assert f"a .csv.gz file may have at most {limit} bytes" in problem
    assert "ImportGzipMaxBytes" in problem
    assert imports_module.GZIP_MAX_BYTES_ENV in problem
    assert "split it into .csv.gz files" in problem
    assert "upload it uncompressed as .csv" in problem
    assert report["rows_read"] == report["rows_written"] == 0
    assert imports.messages() == []  # no chunk was queued
    return report


@pytest.fixture
def gz(imports, monkeypatch):
    imports.put_mapping("gz", MAPPING)
    return imports


def test_a_file_larger_than_the_limit_compressed_is_refused_before_it_is_read(gz, monkeypatch):
    data = HEADER + b"".join(b"r%05d,%s\n" % (i, os.urandom(40).hex().encode()) for i in range(50))
    compressed = gzip.compress(data)
    monkeypatch.setenv(imports_module.GZIP_MAX_BYTES_ENV, str(len(compressed) - 1))
    opened = []
    real_open = gz.services.bucket.open
    gz.services.bucket.open = lambda *a, **k: opened.append(a) or real_open(*a, **k)
    key = put_gz(gz, "gz", "big.csv.gz", compressed)

    record = gz.deliver(key, "00A1")

    assert_refused_for_its_size(gz, "gz", "big.csv.gz", record, f"is {len(compressed)} bytes")
    assert opened == []  # refused by its size alone: not a byte read
    assert written(gz, "r00000") is None


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(count=st.integers(10, 200), offset=st.sampled_from([-1, 0, 1]))
def test_a_file_at_the_limit_is_imported_and_one_byte_more_is_refused(gz, count, offset):
    """The class: any file whose decompressed size is the limit, one byte
    less or one more (compressed, each is well under it: ten rows and more)."""
    data = HEADER + rows(count)
    assert len(gzip.compress(data)) < len(data) - 1
    limit = len(data) - offset  # offset 1: the file is one byte over
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(imports_module.GZIP_MAX_BYTES_ENV, str(limit))
        key = put_gz(gz, "gz", f"f{count}{offset}.csv.gz", gzip.compress(data))
        record = gz.deliver(key, f"{count:04X}{offset + 1}")
        if offset <= 0:
            assert record.status == "succeeded"
            report = gz.report("gz", f"f{count}{offset}.csv.gz")
            assert report["rows_written"] == count
            assert written(gz, f"r{count - 1:05d}") == {"n": count - 1}
            assert record.bytes_total == len(data)  # the decompressed size
        else:
            assert_refused_for_its_size(
                gz,
                "gz",
                f"f{count}{offset}.csv.gz",
                record,
                f"decompresses to more than {limit} bytes",
            )


BOMB_MB = 20


def test_a_gzip_bomb_is_refused_after_reading_one_byte_past_the_limit(gz, monkeypatch):
    """20 MB of valid rows in about 20 KB: planning decompresses the limit
    and one byte more, no chunk runs, no customer is written."""
    limit = 1 << 20
    monkeypatch.setenv(imports_module.GZIP_MAX_BYTES_ENV, str(limit))
    compressor = zlib.compressobj(wbits=31)  # gzip, built without 50 MB in memory
    row = b"bomb,1\n" * (1 << 14)
    parts = [compressor.compress(HEADER)]
    parts += [compressor.compress(row) for _ in range(BOMB_MB * (1 << 20) // len(row))]
    parts.append(compressor.flush())
    key = put_gz(gz, "gz", "bomb.csv.gz", b"".join(parts))
    decompressed: list[int] = []
    real = imports_module._decompressed

    def counted(stream):
        reader = real(stream)
        read = reader.read

        def counting(size=-1):
            data = read(size)
            decompressed.append(len(data))
            return data

        reader.read = counting
        return reader

    monkeypatch.setattr(imports_module, "_decompressed", counted)

    record = gz.deliver(key, "0B0B")

    assert_refused_for_its_size(
        gz, "gz", "bomb.csv.gz", record, f"decompresses to more than {limit} bytes"
    )
    # the header's first megabyte, then the planning pass up to the limit + 1
    assert sum(decompressed) <= imports_module.MAX_HEADER_BYTES + limit + 1
    assert written(gz, "bomb") is None


def test_a_file_damaged_after_its_header_fails_at_planning(gz):
    """Planning reads the whole stream now: a file cut short fails before any
    row is written, as one that is no gzip at all does."""
    data = HEADER + rows(200_000)  # 2.7 MB: its first megabyte (the header's read) is whole
    assert len(data) > 2 * imports_module.MAX_HEADER_BYTES
    compressed = gzip.compress(data)
    key = put_gz(gz, "gz", "cut.csv.gz", compressed[: len(compressed) * 3 // 4])

    record = gz.deliver(key, "0C07")

    assert record.status == "failed"
    [problem] = gz.report("gz", "cut.csv.gz")["problems"]
    assert "'cut.csv.gz' is not a gzip file, or a damaged one" in problem
    assert written(gz, "r00000") is None


# ------------------------------------------------- chunks of a gzipped file

ROWS = 400
CHUNK_BYTES = 1000  # about 90 rows a chunk: 5 chunks


@pytest.fixture
def spooled(monkeypatch):
    """The size of each chunk's temporary file (what it keeps of the file)."""
    sizes: list[tuple[int, int | None, int]] = []
    real = imports_module._downloaded

    def measured(bucket, target, start, end, etag):
        stream = real(bucket, target, start, end, etag)
        sizes.append((start, end, stream.seek(0, os.SEEK_END)))
        stream.seek(0)
        return stream

    monkeypatch.setattr(imports_module, "_downloaded", measured)
    return sizes


@pytest.mark.parametrize("checkpoints", [False, True], ids=["whole-chunks", "checkpoints"])
def test_a_gzipped_file_is_cut_into_chunks_that_keep_only_their_range(
    gz, monkeypatch, spooled, counted_writes, checkpoints
):
    """Several chunks by decompressed offsets, each row written and counted
    once, the progress in decompressed bytes; with no time left each chunk
    checkpoints after every batch and goes on from its decompressed offset."""
    monkeypatch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", str(CHUNK_BYTES))
    monkeypatch.setattr(imports_module, "ROWS_PER_BATCH", 25)
    data = HEADER + rows(ROWS)
    record, _ = gz.drop("gz", "many.csv.gz", data, run_chunks=False)

    # cut where the same file uncompressed is cut
    layout = read_layout(data, None)
    as_csv = plan_chunks(io.BytesIO(data), layout, CHUNK_BYTES)
    assert record.plan["chunks"] == [[c.start, c.end, c.first_line] for c in as_csv]
    assert record.chunks_total == len(as_csv) >= 4
    assert record.bytes_total == len(data)
    gz.run_queue(time_left=(lambda: 0.0) if checkpoints else None)

    done = gz.services.imports.get(record.execution_id)
    assert done.status == "succeeded"
    assert done.counters["bytes_done"] == len(data) - len(HEADER)
    assert done.progress.fraction == 1.0
    report = gz.report("gz", "many.csv.gz")
    assert (report["rows_read"], report["rows_written"]) == (ROWS, ROWS)
    assert counted_writes == Counter({f"r{i:05d}": 1 for i in range(ROWS)})
    assert written(gz, f"r{ROWS - 1:05d}") == {"n": ROWS - 1}
    # each temporary file held its chunk's range (or the rest of it), never the file
    assert spooled
    for start, end, size in spooled:
        assert size == (len(data) if end is None else end) - start
        assert size <= CHUNK_BYTES + 20  # a chunk ends with the row at its target


# ---------------------------------------------------------------- the setting


def test_the_limit_is_a_stack_parameter_only_the_import_function_gets():
    template = load_template()
    parameter = template["Parameters"]["ImportGzipMaxBytes"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == imports_module.DEFAULT_GZIP_MAX_BYTES
    assert int(parameter["MaxValue"]) == imports_module.MAX_GZIP_MAX_BYTES
    assert 1 <= int(parameter["MinValue"]) <= imports_module.DEFAULT_GZIP_MAX_BYTES
    assert imports_module.GZIP_MAX_BYTES_ENV in parameter["Description"]
    given_it = {
        name
        for name, function in resources_of_type(template, "AWS::Serverless::Function").items()
        if imports_module.GZIP_MAX_BYTES_ENV
        in (function["Properties"].get("Environment") or {}).get("Variables", {})
    }
    # planning refuses; a chunk reads only ranges planning found
    assert given_it == {"ImportFunction"}
    variables = template["Resources"]["ImportFunction"]["Properties"]["Environment"]["Variables"]
    assert variables[imports_module.GZIP_MAX_BYTES_ENV] == {"Ref": "ImportGzipMaxBytes"}


def test_unset_or_empty_is_the_default(monkeypatch):
    monkeypatch.delenv(imports_module.GZIP_MAX_BYTES_ENV, raising=False)
    assert imports_module.gzip_max_bytes() == imports_module.DEFAULT_GZIP_MAX_BYTES
    monkeypatch.setenv(imports_module.GZIP_MAX_BYTES_ENV, "")
    assert imports_module.gzip_max_bytes() == imports_module.DEFAULT_GZIP_MAX_BYTES


@given(
    st.one_of(
        st.text().filter(lambda t: "\0" not in t and t.strip() and not t.strip().isdecimal()),
        st.integers(max_value=0).map(str),
        st.integers(min_value=imports_module.MAX_GZIP_MAX_BYTES + 1).map(str),
        st.sampled_from(["1GB", "1e9", "1.5", "-1", "0", "\uff11"]),
    )
)
def test_anything_but_a_size_in_range_is_refused_naming_the_variable(value):
    name = imports_module.GZIP_MAX_BYTES_ENV
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(name, value)
        with pytest.raises(ValueError, match=f"^{name}=") as refused:
            imports_module.gzip_max_bytes()
    assert f"from 1 to {imports_module.MAX_GZIP_MAX_BYTES}" in str(refused.value)


def test_make_run_refuses_a_limit_that_is_not_one_before_it_starts(monkeypatch, tmp_path):
    name = imports_module.GZIP_MAX_BYTES_ENV
    monkeypatch.setenv(name, "abc")
    monkeypatch.setattr(stack, "CREDENTIALS_PATH", tmp_path / "credentials.json")
    monkeypatch.setattr(stack, "_bound", lambda *_: pytest.fail("make run bound its ports"))
    with pytest.raises(SystemExit) as stopped:
        stack.main()
    assert str(stopped.value).startswith(f"{name}='abc'")
