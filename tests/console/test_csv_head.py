"""The wizard reads a file's header and first rows in the browser
(static/csv.js) and sends the preview whole records only: for any CSV the
writer of Python's csv module makes (quotes, delimiters and line breaks
inside cells, any delimiter the importer knows), its records are the
importer's (import_rows: csv.reader on lines cut at \\n, blank records
skipped), and the head of a file cut at any byte ends at a record's end.

csv.js runs in Node (the JavaScript engine `make test` installs dynalite
with), the same module the browser loads."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync.import_mapping import DELIMITERS
from propsync_local.cfn_template import REPO_ROOT

CSV_JS = REPO_ROOT / "functions" / "console" / "static" / "csv.js"

# A Node process answering one JSON line per request: the records csv.js
# reads from the text, or the head of the text's UTF-8 bytes cut at ``cut``.
RUNNER = f"""
import {{ headOf, parseRecords }} from {json.dumps(CSV_JS.as_uri())};
import readline from "node:readline";
const lines = readline.createInterface({{ input: process.stdin }});
for await (const line of lines) {{
  const ask = JSON.parse(line);
  let answer;
  if (ask.cut === null) {{
    answer = parseRecords(ask.text, ask.delimiter, {{ atEnd: true }}).records;
  }} else {{
    const bytes = new TextEncoder().encode(ask.text).subarray(0, ask.cut);
    answer = headOf(bytes, ask.whole, {{ delimiter: ask.delimiter, rows: 1000000 }});
  }}
  process.stdout.write(JSON.stringify(answer) + "\\n");
}}
"""


@pytest.fixture(scope="module")
def csv_js() -> Iterator[Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make test installs it for dynalite)")
    process = subprocess.Popen(
        [node, "--input-type=module", "-e", RUNNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )

    def ask(**request: Any) -> Any:
        assert process.stdin
        assert process.stdout
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    yield ask
    process.terminate()
    process.wait()


def importer_records(text: str, delimiter: str) -> list[list[str]]:
    """What the importer reads (import_rows._rows)."""
    reader = csv.reader(io.StringIO(text, newline="\n"), delimiter=delimiter, strict=False)
    return [cells for cells in reader if cells and cells != [""]]


cells = st.text(st.sampled_from(list("ab ,;|\t\"\n\r'xé€😀")), max_size=6)
rows = st.lists(st.lists(cells, min_size=1, max_size=4), min_size=1, max_size=6)


def written(table: list[list[str]], delimiter: str, terminator: str) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator=terminator).writerows(table)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(
    table=rows,
    delimiter=st.sampled_from(DELIMITERS),
    terminator=st.sampled_from(["\n", "\r\n"]),
    last_line_break=st.booleans(),
)
def test_the_records_are_the_importers(csv_js, table, delimiter, terminator, last_line_break):
    text = written(table, delimiter, terminator)
    if not last_line_break:
        text = text.removesuffix(terminator)

    assert csv_js(text=text, delimiter=delimiter, cut=None) == importer_records(text, delimiter)


@settings(max_examples=300, deadline=None)
@given(
    table=rows,
    delimiter=st.sampled_from(DELIMITERS),
    terminator=st.sampled_from(["\n", "\r\n"]),
    data=st.data(),
)
def test_a_head_cut_anywhere_ends_at_a_records_end(csv_js, table, delimiter, terminator, data):
    text = written(table, delimiter, terminator)
    size = len(text.encode())
    cut = data.draw(st.integers(0, size))

    head = csv_js(text=text, delimiter=delimiter, cut=cut, whole=cut == size)

    whole = importer_records(text, delimiter)
    sample = head["sample"]
    if cut == size:  # the whole file: every record
        assert importer_records(sample, delimiter) == whole
    assert text.startswith(sample)
    assert len(sample.encode()) <= cut
    read = importer_records(sample, delimiter)
    assert read == whole[: len(read)]  # the sample's records are the file's first ones
    if read:
        assert [head["header"], *head["rows"]] == read  # what the wizard shows
    else:
        assert head["header"] is None
    # only the record the cut went through is left out (with a cut right
    # after a record's line break, none is)
    up_to_the_cut = text.encode()[:cut].decode("utf-8", "ignore")
    assert len(read) >= len(importer_records(up_to_the_cut, delimiter)) - 1


def test_the_delimiter_is_found_from_the_header_row(csv_js):
    for delimiter in DELIMITERS:
        text = delimiter.join(["id", "a,b" if delimiter != "," else "ab", "c"]) + "\nx\n"
        head = csv_js(text=text, delimiter=None, cut=len(text.encode()), whole=True)
        assert head["delimiter"] == delimiter
