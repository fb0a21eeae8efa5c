"""The wizard reads a file's head as the importer reads its rows: strictly
UTF-8 (import_rows rejects a row that is not). For any bytes, cut anywhere,
csv.js's headOf says "not UTF-8" (with the first such line) exactly when the
head's whole lines are not UTF-8 for Python either; a cut inside a
multi-byte character of a UTF-8 file is never taken for one (only whole
lines count). Runs csv.js in Node, as tests/console/test_csv_head.py does."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propsync_local.cfn_template import REPO_ROOT

CSV_JS = REPO_ROOT / "functions" / "console" / "static" / "csv.js"

RUNNER = f"""
import {{ headOf, NotUtf8Error }} from {json.dumps(CSV_JS.as_uri())};
import readline from "node:readline";
const lines = readline.createInterface({{ input: process.stdin }});
for await (const line of lines) {{
  const ask = JSON.parse(line);
  const bytes = Uint8Array.from(Buffer.from(ask.bytes, "base64"));
  let answer;
  try {{
    answer = {{ header: headOf(bytes, ask.whole, {{ delimiter: "," }}).header }};
  }} catch (error) {{
    if (!(error instanceof NotUtf8Error)) throw error;
    answer = {{ not_utf8: error.line }};
  }}
  process.stdout.write(JSON.stringify(answer) + "\\n");
}}
"""


@pytest.fixture(scope="module")
def head_of() -> Iterator[Any]:
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

    def ask(data: bytes, whole: bool) -> Any:
        assert process.stdin
        assert process.stdout
        request = {"bytes": base64.b64encode(data).decode(), "whole": whole}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    yield ask
    process.terminate()
    process.wait()


def first_line_not_utf8(data: bytes) -> int | None:
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


# cells of letters a spreadsheet writes in Latin-1 / Windows-1252 as well
letters = st.text(st.sampled_from(list("ab,\nJürgen éÀß€“”")), max_size=8)
encodings = st.sampled_from(["utf-8", "latin-1", "cp1252"])


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(letters, min_size=1, max_size=6), encoding=encodings, data=st.data())
def test_a_head_is_not_utf8_exactly_when_its_whole_lines_are_not(head_of, lines, encoding, data):
    encoded = "\n".join(["id,name", *lines]).encode(encoding, "replace")
    cut = data.draw(st.integers(0, len(encoded)))
    whole = cut == len(encoded)
    head = encoded[:cut]
    lines_read = head if whole else head[: head.rfind(b"\n") + 1]

    answer = head_of(head, whole)

    expected = first_line_not_utf8(lines_read)
    if expected is None:
        assert "not_utf8" not in answer, (head, answer)
    else:
        assert answer == {"not_utf8": expected}, head


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40), data=st.data())
def test_a_utf8_file_cut_anywhere_is_utf8(head_of, text, data):
    encoded = f"id,name\n{text}\n".encode("utf-8", "surrogatepass")
    if first_line_not_utf8(encoded) is not None:  # a lone surrogate is not UTF-8
        return
    cut = data.draw(st.integers(0, len(encoded)))

    assert "not_utf8" not in head_of(encoded[:cut], cut == len(encoded))
