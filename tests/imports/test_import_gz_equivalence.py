"""A .csv.gz file imports exactly as the same bytes uploaded as .csv (its
report's counts and problems, its rejected rows, the values written),
whatever its gzip members (concatenated gzip files), its chunks (rows and
quoted line breaks straddling their boundaries), a BOM or CRLF line ends;
and an odd .gz (empty, not gzip, cut short, trailing bytes) ends with one
report, as gzip(1) reads it. On both engines."""

from __future__ import annotations

import gzip
import itertools
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from tests.conftest import PROJECT

MAPPING = {
    "properties": [
        {"from_column": "n", "to_property": "n", "type": "number"},
        {"from_column": "s", "to_property": "s", "type": "string"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}


def members(data: bytes, cuts: list[int]) -> bytes:
    """``data`` as concatenated gzip members, cut at ``cuts``."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return b"".join(gzip.compress(data[a:b]) for a, b in itertools.pairwise(points))


def upload(imports, name, file_name, body, sequencer):
    key = f"imports/{PROJECT}/{name}/{file_name}"
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=body)
    return imports.deliver(key, sequencer)


def rejected_or_none(imports, name, file_name):
    try:
        return imports.rejected(name, file_name)
    except Exception:
        return None


def outcome(imports, name, file_name, record, ids):
    report = imports.report(name, file_name)
    store = imports.services.customers
    values = {}
    for registered in ids:
        customer_id = find_customer_id(store, PROJECT, "registered", registered)
        values[registered] = (
            plain_properties(store.read_customer(PROJECT, customer_id)) if customer_id else None
        )
    kept = {
        k: report.get(k)
        for k in ("status", "rows_read", "rows_written", "rows_rejected", "problems")
    }
    kept["rejected_lines"] = [
        (r.get("line"), r.get("reason")) for r in report.get("rejected_rows", []) or []
    ]
    return kept, rejected_or_none(imports, name, file_name), values, record.status


def file_of(rows: list[tuple[str, str, str]], *, bom: bool, crlf: bool, prefix: str) -> bytes:
    eol = "\r\n" if crlf else "\n"
    text = "id,n,s" + eol
    for ident, n, s in rows:
        text += f"{prefix}{ident},{n},{s}{eol}"
    data = text.encode()
    return (b"\xef\xbb\xbf" if bom else b"") + data


cells = st.sampled_from(["1", "2.5", "x", "", "-3", '"4"'])
strings = st.sampled_from(["a", '"multi\nline"', '"q,""q"""', '""', "z" * 30, '"\r\nx"'])
row = st.tuples(st.sampled_from(["1", "2", "3", "4", "5", ""]), cells, strings)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(row, min_size=0, max_size=40),
    bom=st.booleans(),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(0, 5000), max_size=4),
    chunk=st.sampled_from([40, 97, 300, 100000]),
)
def test_gz_imports_as_the_same_csv(imports, rows, bom, crlf, cuts, chunk):
    imports.put_mapping("plain", MAPPING)
    imports.put_mapping("zipped", MAPPING)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROPSYNC_IMPORT_CHUNK_BYTES", str(chunk))
        tag = f"{abs(hash((tuple(rows), bom, crlf, tuple(cuts), chunk))) % 10**8:08d}"
        plain = file_of(rows, bom=bom, crlf=crlf, prefix=f"P{tag}")
        zipped = file_of(rows, bom=bom, crlf=crlf, prefix=f"Z{tag}")
        ids = sorted({r[0] for r in rows})
        r1 = upload(imports, "plain", f"f{tag}.csv", plain, f"{tag}01")
        r2 = upload(imports, "zipped", f"f{tag}.csv.gz", members(zipped, cuts), f"{tag}02")
        a = outcome(imports, "plain", f"f{tag}.csv", r1, [f"P{tag}{i}" for i in ids])
        b = outcome(imports, "zipped", f"f{tag}.csv.gz", r2, [f"Z{tag}{i}" for i in ids])
        a_values = {k[len(f"P{tag}") :]: v for k, v in a[2].items()}
        b_values = {k[len(f"Z{tag}") :]: v for k, v in b[2].items()}
        norm = lambda x: (  # noqa: E731
            json.dumps(x[0], sort_keys=True).replace(f"P{tag}", "@").replace(f"Z{tag}", "@")
        )
        assert norm(a) == norm(b).replace(".csv.gz", ".csv")
        assert (a[1] or b"").replace(f"P{tag}".encode(), b"@") == (b[1] or b"").replace(
            f"Z{tag}".encode(), b"@"
        )
        assert a_values == b_values
        assert a[3] == b[3]


ROW = b"id,n,s\nq1,1,a\n"
NO_HEADER = "the file has no header row"
DAMAGED = "'odd.csv.gz' is not a gzip file, or a damaged one"


@pytest.mark.parametrize(
    ("body", "status", "rows", "problem"),
    [
        (b"", "failed", 0, NO_HEADER),
        (gzip.compress(b""), "failed", 0, NO_HEADER),
        (gzip.compress(b"id,n,s\n"), "succeeded", 0, None),
        (gzip.compress(b"\xef\xbb\xbfid,n,s\r\n"), "succeeded", 0, None),
        (gzip.compress(b"") + gzip.compress(ROW), "succeeded", 1, None),
        (ROW, "failed", 0, DAMAGED),  # not gzip
        (gzip.compress(ROW) + b"garbage after", "failed", 0, DAMAGED),
        (gzip.compress(ROW) + b"\0\0\0\0", "succeeded", 1, None),  # padding, as gzip(1)
        (gzip.compress(ROW)[:-3], "failed", 0, DAMAGED),  # its trailer cut
        (gzip.compress(ROW)[:-8], "failed", 0, DAMAGED),  # no trailer
        (zlib.compress(ROW), "failed", 0, DAMAGED),  # zlib, not gzip
    ],
    ids=[
        "empty",
        "gz-of-empty",
        "header-only",
        "bom-crlf-header",
        "empty-member-first",
        "not-gzip",
        "trailing-garbage",
        "trailing-zeros",
        "cut-trailer",
        "no-trailer",
        "zlib",
    ],
)
def test_odd_gz_files_end_with_one_report(imports, body, status, rows, problem):
    imports.put_mapping("odd", MAPPING)
    record = upload(imports, "odd", "odd.csv.gz", body, "0D0D")
    report = imports.report("odd", "odd.csv.gz")
    assert imports.services.imports.get(record.execution_id).status == status
    assert report["status"] == status
    assert report["rows_written"] == rows
    if problem is None:
        assert report["problems"] == []
    else:
        [found] = report["problems"]
        assert found.startswith(problem)
    assert imports.messages() == []
