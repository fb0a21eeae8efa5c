"""Hostile input, generated: arbitrary JSON, names, values, nesting and bytes
against the tracking and customers routes. Never a 5xx, never an unhandled
exception, and a refused request (4xx) never changes stored data.

Bodies are written by a small serializer of their own (``body``), so that a
body can hold what ``json.dumps`` never writes: numbers of any size and
exponent (``1e9999999999999999999``, 4,400 digits), lone UTF-16 surrogates
both as ``\\ud800`` escapes and as raw bytes, and nesting at and beyond the
parser's depth limit, in every position of a request.

In the queued mode every tracking request is also sent again in the
synchronous mode (the mode is read per request): a command the queued routes
refuse gets the synchronous mode's refusal, word for word, and one they accept
succeeds there too; the worker applies every accepted command (none is left
to come back, none dead-lettered)."""

import json
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PROJECT
from tests.support.tracking_modes import (
    APPLY_KEYS,
    accepted,
    assert_all_applied,
    assert_answers_alike,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _parser_depth_limit() -> int:
    """How deep json.loads nests on this interpreter (about 10,000 on 3.13)."""
    low, high = 1, 1_000_000
    while low < high:
        middle = (low + high + 1) // 2
        try:
            json.loads("[" * middle + "]" * middle)
        except RecursionError:
            high = middle - 1
        else:
            low = middle
    return low


PARSER_DEPTH = _parser_depth_limit()


@dataclass(frozen=True)
class Raw:
    """JSON text written into a body as it is (a number, a nested fragment)."""

    text: str


def body(value, *, ascii_escapes: bool = True) -> bytes:
    """``value`` as JSON bytes. Strings keep lone surrogates: as ``\\udXXX``
    escapes, or (``ascii_escapes=False``) as the raw bytes ED A0 80..."""
    return _text(value, ascii_escapes).encode("utf-8", errors="surrogatepass")


def _text(value, ascii_escapes: bool) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{_text(k, ascii_escapes)}:{_text(v, ascii_escapes)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_text(item, ascii_escapes) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_escapes)


# any code point, lone surrogates included (hypothesis leaves them out by default)
any_text = st.text(st.characters(blacklist_categories=()), max_size=30)
raw_numbers = st.one_of(
    # magnitudes around every edge of what is stored: DynamoDB (1E-130 to 9.9E+125),
    # floats (1e-324 to 1e308)
    st.builds(lambda m, e: Raw(f"{m}e{e}"), st.integers(-9, 9), st.integers(-400, 400)),
    # exponents on both sides of what a Decimal holds (18 digits)
    st.builds(
        lambda m, e: Raw(f"{m}e{e}"), st.integers(-(10**6), 10**6), st.integers(-(10**21), 10**21)
    ),
    st.sampled_from(
        ["1e9999999999999999999", "-1E+999999999999999999", "1e-400", "-0", "1E400"]
    ).map(Raw),
    # integers up to and past Python's 4,300-digit limit, decimals with many digits
    st.integers(300, 4400).map(lambda n: Raw("9" * n)),
    st.integers(1, 3000).map(lambda n: Raw("0." + "1" * n)),
)
deep = st.one_of(st.integers(60, 70), st.integers(PARSER_DEPTH - 12, PARSER_DEPTH + 2)).map(
    lambda depth: Raw("[" * depth + "]" * depth)
)
plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["", "registered", "customers", "1570001049", "x" * 300, "\x00", "\ud7ff"]),
)
hostile = st.one_of(any_text, raw_numbers, st.sampled_from(["\ud800", "a\udfff", "\udbff\ud800"]))
scalars = st.one_of(plain, hostile)  # half of the leaves hostile
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(st.text(max_size=12), any_text), inner, max_size=4)
    ),
    max_leaves=25,
)
anything = st.one_of(json_values, deep)  # what may stand in any position of a request
names = st.one_of(
    st.text(max_size=300),
    any_text,
    st.sampled_from(["", " ", "a.b", "#p0", "\n", "x" * 257, "\udc00", "a\ud83d"]),
)
id_values = st.one_of(anything, any_text, st.sampled_from(["x" * 1025, "\ud800", "a\udfff"]))
# 30 to 50 properties of 16,000 characters: more than one customer's 400 KB item
too_large = st.integers(30, 50).map(lambda n: {f"p{i}": "x" * 16_000 for i in range(n)})
properties = st.one_of(anything, st.dictionaries(names, anything, max_size=6), too_large)
command_data = st.fixed_dictionaries(
    {},
    optional={
        "customer_ids": st.one_of(
            anything,
            st.dictionaries(
                st.one_of(st.sampled_from(["registered", "cookie", "a#b", ""]), any_text),
                id_values,
                max_size=3,
            ),
        ),
        "properties": properties,
        "update_timestamp": st.one_of(
            anything,
            any_text,
            st.floats(),
            st.integers(-(10**20), 10**20),
            st.integers(300, 500).map(lambda n: Raw("9" * n)),
        ),
    },
)
commands = st.one_of(
    anything,
    st.fixed_dictionaries(
        {
            "name": st.one_of(
                st.sampled_from(["customers", "system/time", "system/cookie", "customers/events"]),
                anything,
            )
        },
        optional={
            "data": st.one_of(command_data, anything),
            "command_id": st.one_of(anything, any_text),
        },
    ),
)
encodings = st.booleans()  # surrogates as \udXXX escapes, or as raw bytes
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v, a: body(v, ascii_escapes=a), anything, encodings),
    st.builds(
        lambda v, a: body(v, ascii_escapes=a),
        st.fixed_dictionaries({"commands": st.one_of(st.lists(commands, max_size=6), anything)}),
        encodings,
    ),
    st.integers(1, 3000).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(60, 200).map(
        lambda depth: json.dumps(
            {
                "commands": [
                    {
                        "name": "customers",
                        "data": {
                            "customer_ids": {"registered": "deep"},
                            "properties": {"p": json.loads("[" * depth + "]" * depth)},
                        },
                    }
                ]
            }
        ).encode()
    ),
)


# Every position of a customers command, each filled with anything while the
# rest of the command stays valid, so that the odd value reaches the writes.
POSITIONS = (
    "name",
    "command_id",
    "data",
    "customer_ids",
    "id type",
    "id value",
    "properties",
    "property name",
    "property value",
    "key in a value",
    "update_timestamp",
)
odd_values = st.one_of(
    anything, st.floats(), st.integers(), st.decimals().map(lambda d: Raw(str(d))), raw_numbers
)
odd_keys = st.one_of(names, any_text)


def command_with(position, odd, key):
    data = {"customer_ids": {"registered": "pos"}, "properties": {"p": 1}, "update_timestamp": 100}
    command = {"name": "customers", "data": data}
    if position in ("name", "command_id", "data"):
        command[position] = odd
    elif position in ("customer_ids", "properties", "update_timestamp"):
        data[position] = odd
    elif position == "id type":
        data["customer_ids"] = {key: "pos"}
    elif position == "id value":
        data["customer_ids"] = {"registered": odd}
    elif position == "property name":
        data["properties"] = {key: 1}
    elif position == "property value":
        data["properties"] = {"p": odd}
    else:
        data["properties"] = {"p": {"k": [1, {key: odd}]}}
    return command


POSITION_FUZZ = settings(FUZZ, max_examples=20)


@pytest.fixture
def table_snapshot(dynamodb_client, table_name):
    def take():
        items = dynamodb_client.scan(TableName=table_name, ConsistentRead=True)["Items"]
        return sorted(json.dumps(item, sort_keys=True) for item in items)

    return take


@pytest.fixture
def like_sync(api, monkeypatch):
    """In the queued mode, checks a tracking request's answer against the
    synchronous mode's answer to the same request, sent after it."""

    def check(response, send):
        if not api.queued:
            return
        assert_all_applied(api)
        with monkeypatch.context() as patch:
            patch.setenv("PROPSYNC_TRACKING_WRITES", "sync")
            sync = send()
        assert response.status == sync.status, (response.body, sync.body)
        queued, expected = response.json(), sync.json()
        if "results" not in queued:  # a request refused whole, or the single route
            assert_answers_alike(queued, expected)
            return
        assert len(queued["results"]) == len(expected["results"])
        for result, sync_result in zip(queued["results"], expected["results"], strict=True):
            assert_answers_alike(result, sync_result)

    return check


@FUZZ
@given(body=bodies)
def test_tracking_batch_survives_anything(api, table_snapshot, like_sync, body):
    before = table_snapshot()
    response = api.batch(body=body)
    assert response.status < 500, response.body
    payload = response.json()
    assert isinstance(payload["success"], bool)
    if response.status >= 400:
        assert table_snapshot() == before
    else:
        assert all(isinstance(r["success"], bool) for r in payload["results"])
        assert not any(r.get("errors") == [RETRY] for r in payload["results"]), payload
        if api.queued:
            assert not any(APPLY_KEYS & r.keys() for r in payload["results"]), payload
    like_sync(response, lambda: api.batch(body=body))


RETRY = "temporary server error; the command was not completed, retry it"


@pytest.mark.parametrize("position", POSITIONS)
@POSITION_FUZZ
@given(odd=odd_values, key=odd_keys, ascii_escapes=encodings)
def test_anything_in_any_one_position_of_a_command(
    api, table_snapshot, like_sync, position, odd, key, ascii_escapes
):
    command = command_with(position, odd, key)
    before = table_snapshot()

    def send_batch():
        return api.batch(body=body({"commands": [command]}, ascii_escapes=ascii_escapes))

    response = send_batch()
    assert response.status < 500, response.body
    if response.status >= 400:
        assert table_snapshot() == before
    else:
        [result] = response.json()["results"]
        assert result.get("errors") != [RETRY], result
        if not result["success"]:
            assert table_snapshot() == before
        elif api.queued:
            assert result.keys() <= {"success", "command_id"}, result
    like_sync(response, send_batch)
    if position in ("name", "command_id"):
        return
    before = table_snapshot()

    def send_single():
        return api.request(
            "POST",
            f"/track/v2/projects/{PROJECT}/customers",
            body=body(command["data"], ascii_escapes=ascii_escapes),
            authorization=None,
        )

    single = send_single()
    assert single.status < 500, single.body
    if single.status >= 400:
        assert table_snapshot() == before
    elif api.queued:
        assert single.json() == accepted()
    like_sync(single, send_single)


@FUZZ
@given(data=st.one_of(command_data, anything), ascii_escapes=encodings)
def test_single_customers_route_survives_anything(
    api, table_snapshot, like_sync, data, ascii_escapes
):
    before = table_snapshot()

    def send():
        return api.request(
            "POST",
            f"/track/v2/projects/{PROJECT}/customers",
            body=body(data, ascii_escapes=ascii_escapes),
            authorization=None,
        )

    response = send()
    assert response.status < 500, response.body
    if response.status >= 400:
        assert table_snapshot() == before
    elif api.queued:
        assert response.json() == accepted()
    like_sync(response, send)


private_bodies = st.one_of(
    st.binary(max_size=100),
    st.builds(lambda v, a: body(v, ascii_escapes=a), anything, encodings),
    st.builds(
        lambda v, a: body(v, ascii_escapes=a),
        st.fixed_dictionaries(
            {},
            optional={
                "properties": properties,
                "customer_ids": st.one_of(
                    anything, st.dictionaries(st.one_of(st.just("registered"), any_text), id_values)
                ),
            },
        ),
        encodings,
    ),
)


@FUZZ
@given(
    body=private_bodies,
    path_id=st.text(
        alphabet=st.characters(blacklist_categories=(), blacklist_characters="/?#%"),
        min_size=1,
        max_size=40,
    ),
    include=st.one_of(st.none(), st.text(max_size=5), any_text),
    id_type=st.one_of(st.none(), st.text(max_size=10), any_text),
)
def test_customers_routes_survive_anything(api, table_snapshot, body, path_id, include, id_type):
    tracked = api.track({"registered": "fuzzed"}, {"a": 1}, 5)
    if not api.queued:
        customer = tracked["customer_id"]
    else:
        assert tracked == accepted()
        customer = api.customer_id_of({"registered": "fuzzed"})
    query = {
        k: v
        for k, v in {"include_timestamps": include, "id_type": id_type}.items()
        if v is not None
    }
    for send in (
        lambda: api.get_customer(path_id, query=query or None),
        lambda: api.request("PATCH", f"/api/customers/{customer}", body=body),
        lambda: api.request("PATCH", f"/api/customers/{path_id}", body=body, query=query or None),
        lambda: api.request("POST", f"/data/v2/projects/{PROJECT}/customers/export-one", body=body),
    ):
        before = table_snapshot()
        response = send()
        assert response.status < 500, response.body
        if response.status >= 400:
            assert table_snapshot() == before


attribute_items = st.one_of(
    anything,
    st.fixed_dictionaries(
        {
            "type": st.one_of(
                st.sampled_from(
                    [
                        "property",
                        "id",
                        "segmentation",
                        "expression",
                        "aggregate",
                        "prediction",
                        "consent",
                    ]
                ),
                anything,
            )
        },
        optional={
            "property": st.one_of(st.sampled_from(["a", "fuzzed"]), names, anything),
            "id": st.one_of(st.sampled_from(["registered", "cookie", "crm"]), names, anything),
            "category": st.one_of(st.just("newsletter"), any_text, anything),
        },
    ),
)
attributes_bodies = st.one_of(
    st.binary(max_size=100),
    st.builds(lambda v, a: body(v, ascii_escapes=a), anything, encodings),
    st.builds(
        lambda v, a: body(v, ascii_escapes=a),
        st.fixed_dictionaries(
            {},
            optional={
                "customer_ids": st.one_of(
                    st.just({"registered": "fuzzed"}),
                    anything,
                    st.dictionaries(st.one_of(st.just("registered"), any_text), id_values),
                ),
                "attributes": st.one_of(st.lists(attribute_items, max_size=6), anything),
            },
        ),
        encodings,
    ),
)


@FUZZ
@given(
    body=attributes_bodies,
    include=st.one_of(st.none(), st.sampled_from(["0", "1"]), st.text(max_size=5), any_text),
)
def test_attributes_route_survives_anything_and_changes_nothing(api, table_snapshot, body, include):
    tracked = api.track({"registered": "fuzzed"}, {"a": 1}, 5)
    assert tracked["success"] is True
    before = table_snapshot()
    response = api.request(
        "POST",
        f"/data/v2/projects/{PROJECT}/customers/attributes",
        body=body,
        query=None if include is None else {"include_timestamps": include},
    )
    assert response.status < 500, response.body
    if response.status == 200:
        results = response.json()["results"]
        assert all(isinstance(result["success"], bool) for result in results)
    assert table_snapshot() == before  # a read, whatever it was sent


@FUZZ
@given(body=private_bodies)
def test_anonymize_survives_anything_and_a_refusal_erases_nothing(api, table_snapshot, body):
    tracked = api.track({"registered": "fuzzed"}, {"a": 1}, 5)
    assert tracked["success"] is True
    before = table_snapshot()
    response = api.request("POST", f"/data/v2/projects/{PROJECT}/customers/anonymize", body=body)
    assert response.status < 500, response.body
    if response.status == 200:
        assert response.json() == {"success": True}
    else:
        assert table_snapshot() == before


# ------------------------------------------------------------------ import routes

column_entries = st.fixed_dictionaries(
    {},
    optional={
        "from_column": st.one_of(st.sampled_from(["idecko", "meno", "ts"]), names, anything),
        "to_property": st.one_of(names, anything),
        "type": st.one_of(
            st.sampled_from(["string", "number", "boolean", "date", "datetime", "list"]), anything
        ),
        "to_id": st.one_of(st.sampled_from(["registered", "cookie", "crm"]), anything),
    },
)
mappings = st.one_of(
    anything,
    st.fixed_dictionaries(
        {},
        optional={
            "properties": st.one_of(st.lists(column_entries, max_size=4), anything),
            "ids": st.one_of(st.lists(column_entries, max_size=3), anything),
            "constant_columns": st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {}, optional={"name": st.one_of(names, anything), "value": anything}
                    ),
                    max_size=3,
                ),
                anything,
            ),
            "timezone": st.one_of(st.sampled_from(["UTC", "Mars/Base", ""]), any_text, anything),
            "update_timestamp": st.one_of(
                st.fixed_dictionaries({"from_column": st.one_of(names, anything)}), anything
            ),
            "delimiter": st.one_of(st.sampled_from([",", ";", "\t", "|", ""]), anything),
            "unknown": anything,
        },
    ),
)
csv_text = st.one_of(
    any_text,
    st.text(st.sampled_from(',;\t|"\n\r =+-@abc019\udc80\ufeff'), max_size=300),
    st.lists(
        st.lists(st.one_of(st.sampled_from(["u1", "Ann", "1767225600", "x", ""]), any_text)),
        max_size=25,
    ).map(lambda rows: "idecko,meno,ts\n" + "".join(",".join(r) + "\n" for r in rows)),
)
file_names = st.one_of(st.sampled_from(["people.csv", "a.csv.gz", "..", "a/b.csv"]), names)
preview_bodies = st.one_of(
    st.binary(max_size=100),
    st.builds(lambda v, a: body(v, ascii_escapes=a), anything, encodings),
    st.builds(
        lambda v, a: body(v, ascii_escapes=a),
        st.fixed_dictionaries(
            {},
            optional={
                "mapping": mappings,
                "sample": st.one_of(csv_text, anything),
                "file_name": st.one_of(file_names, anything),
                "extra": anything,
            },
        ),
        encodings,
    ),
)
start_bodies = st.one_of(
    st.binary(max_size=100),
    st.builds(lambda v, a: body(v, ascii_escapes=a), anything, encodings),
    st.builds(
        lambda v, a: body(v, ascii_escapes=a),
        st.fixed_dictionaries(
            {},
            optional={
                "import_name": st.one_of(st.sampled_from(["crm", "..", ""]), names, anything),
                "file_name": st.one_of(file_names, anything),
                "mapping": mappings,
                "header": st.one_of(st.lists(st.one_of(names, anything), max_size=5), anything),
                "size": st.one_of(st.integers(-5, 6 * 1024**3), anything),
            },
        ),
        encodings,
    ),
)
IMPORT_FUZZ = settings(FUZZ, max_examples=30)


@pytest.fixture
def import_bucket(api, imports, monkeypatch):
    """The import routes' bucket: the `imports` harness's."""
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    return imports


@IMPORT_FUZZ
@given(body=preview_bodies)
def test_the_preview_survives_anything_and_writes_nothing(api, import_bucket, table_snapshot, body):
    before = table_snapshot()
    response = api.request("POST", "/api/imports/preview", body=body)
    assert response.status < 500, response.body
    if response.status == 200:
        preview = response.json()
        assert len(preview["rows"]) <= 20
        assert not (preview["rows"] and preview["problems"])
    assert table_snapshot() == before
    assert import_bucket.keys() == []


@IMPORT_FUZZ
@given(body=start_bodies)
def test_a_start_survives_anything_and_a_refusal_writes_nothing(
    api, import_bucket, table_snapshot, body
):
    before = table_snapshot()
    keys_before = import_bucket.keys()
    response = api.request("POST", "/api/imports", body=body)
    assert response.status < 500, response.body
    assert table_snapshot() == before
    if response.status == 201:
        started = response.json()
        mapping_key = started["file_key"].rsplit("/", 1)[0] + "/mapping.json"
        assert set(import_bucket.keys()) <= {*keys_before, mapping_key}
    else:
        assert import_bucket.keys() == keys_before


@IMPORT_FUZZ
@given(
    file_key=st.one_of(st.none(), any_text, st.just(f"imports/{PROJECT}/crm/x.csv")),
    limit=st.one_of(st.none(), st.text(max_size=5), any_text),
    next_token=st.one_of(st.none(), st.text(max_size=40), any_text),
    execution_id=st.text(
        alphabet=st.characters(blacklist_categories=(), blacklist_characters="/?#%"),
        min_size=1,
        max_size=40,
    ),
)
def test_the_import_reads_survive_any_query_and_write_nothing(
    api, import_bucket, table_snapshot, file_key, limit, next_token, execution_id
):
    before = table_snapshot()
    query = {
        name: value
        for name, value in {"file_key": file_key, "limit": limit, "next": next_token}.items()
        if value is not None
    }
    listed = api.request("GET", "/api/imports", query=query or None)
    assert listed.status < 500, listed.body
    read = api.request("GET", f"/api/imports/{execution_id}")
    assert read.status in (404, 400), read.body
    assert table_snapshot() == before
