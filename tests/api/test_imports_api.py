"""The import routes through the authorizer and the real handler
(ImportsApiFunction), on both engines: preview, start with a presigned POST
that a real multipart upload uses, the execution the upload starts (through
make run's import trigger and the real ImportFunction), listed and read with
its report. A preview's problems and rejected rows are the importer's own
sentences: each test compares them with what an execution of the same file
reports."""

import json
import time

import pytest
import requests

from propsync.access import Permission
from propsync.imports import MAX_REPORTED_ERRORS
from propsync.limits import MAX_UPLOAD_BYTES
from propsync_local.triggers import ImportTriggers
from tests.conftest import PROJECT

OTHER_PROJECT = "22222222-2222-2222-2222-222222222222"
IMPORT_ONLY = frozenset({Permission.IMPORT_CUSTOMERS.value})
MAPPING = {
    "properties": [
        {"from_column": "meno", "to_property": "first_name", "type": "string"},
        {"from_column": "vek", "to_property": "age", "type": "number"},
        {"from_column": "narodeny", "to_property": "born", "type": "date"},
        {"from_column": "zlava", "to_property": "discount", "type": "number"},
    ],
    "ids": [{"from_column": "idecko", "to_id": "registered"}],
    "update_timestamp": {"from_column": "update_timestamp"},
}
CSV = (
    "idecko,meno,vek,narodeny,zlava,update_timestamp\n"
    "u1,Ann,30,1990-05-17,0.25,1767225600\n"
    "u2,Bob,x,1991-01-01,,1767225601\n"
    "u3,Cyd,41,1992-02-02,1.5,2026-01-01T10:00:00Z\n"
)
FORBIDDEN = "No permission to import customers (the key needs the customers:import permission)"


class Importer:
    """The api client, with the import bucket and queue of the `imports`
    harness as the functions' environment."""

    def __init__(self, api, imports):
        self.api, self.imports = api, imports
        self.triggers = ImportTriggers(
            imports.s3, imports.sqs, imports.bucket, imports.services.queue.url
        )

    def preview(self, mapping=MAPPING, sample=CSV, **kw):
        body = {"mapping": mapping, "sample": sample, **kw.pop("extra", {})}
        return self.api.request("POST", "/api/imports/preview", json_body=body, **kw)

    def start(self, name="crm", file_name="people.csv", mapping=MAPPING, **fields):
        body = {"import_name": name, "file_name": file_name, "mapping": mapping, **fields}
        return self.api.request("POST", "/api/imports", json_body=body)

    def upload(self, form, data: bytes, *, fields=None):
        """The multipart POST a browser sends: every field, then the file last."""
        files = {"file": ("people.csv", data, "text/csv")}
        return requests.post(form["url"], data=fields or form["fields"], files=files, timeout=30)

    def run_imports(self):
        """make run's trigger: ImportFunction for each new data file, then
        the chunk queue, as the S3 notification and the event source would."""
        self.triggers.poll_once()

    def list(self, authorization="default", **query):
        return self.api.request(
            "GET", "/api/imports", query=query or None, authorization=authorization
        )

    def get(self, execution_id, **kw):
        return self.api.request("GET", f"/api/imports/{execution_id}", **kw)


@pytest.fixture
def importer(api, imports, monkeypatch):
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    monkeypatch.setenv("PROPSYNC_CHUNK_QUEUE_URL", imports.services.queue.url)
    imports.clock.now = time.time()  # the harness's executions run now, as the functions'
    return Importer(api, imports)


def started(importer, data: bytes = CSV.encode(), name="crm", file_name="people.csv"):
    """Start an import through the API, upload its file with the form, let
    the trigger run it; the start's answer."""
    answer = importer.start(name, file_name)
    assert answer.status == 201, answer.body
    form = answer.json()
    uploaded = importer.upload(form["upload"], data)
    assert uploaded.status_code == 204, uploaded.text
    importer.run_imports()
    return form


# ------------------------------------------------------------------ preview


def test_a_preview_shows_the_rows_typed_as_the_importer_writes_them(importer):
    answer = importer.preview()
    assert answer.status == 200, answer.body
    preview = answer.json()
    assert preview["header"] == ["idecko", "meno", "vek", "narodeny", "zlava", "update_timestamp"]
    assert preview["problems"] == []
    ann, bob, cyd = preview["rows"]
    assert ann == {
        "line": 2,
        "ids": {"registered": "u1"},
        # a number cell as a number, a date as UNIX seconds (midnight UTC)
        "properties": {"first_name": "Ann", "age": 30, "born": 642902400, "discount": 0.25},
        "update_timestamp": 1767225600.0,
        "error": None,
    }
    assert bob["line"] == 3
    assert bob["ids"] is bob["properties"] is bob["update_timestamp"] is None
    assert bob["error"] == "'x' is not a number (column 'vek')"
    assert cyd["update_timestamp"] == 1767261600.0  # ISO 8601 with its offset
    assert cyd["properties"]["discount"] == 1.5


def test_a_preview_rejects_a_row_with_the_reason_the_import_reports(importer):
    """Same mapping, same file: the preview's errors are the report's errors."""
    preview = importer.preview().json()
    importer.imports.put_mapping("crm", MAPPING)
    importer.imports.drop("crm", "people.csv", CSV.encode())
    report = importer.imports.report("crm", "people.csv")
    assert [
        {"line": row["line"], "reason": row["error"]} for row in preview["rows"] if row["error"]
    ] == report["errors"]


def test_an_empty_cell_clears_the_property_and_a_constant_column_can_stamp_the_rows(importer):
    mapping = {
        **MAPPING,
        "constant_columns": [{"name": "exported", "value": 1767225000}],
        "update_timestamp": {"from_column": "exported"},
    }
    rows = importer.preview(mapping).json()["rows"]
    assert [row["update_timestamp"] for row in rows] == [1767225000.0, None, 1767225000.0]
    assert rows[1]["error"]  # the bad number still rejects its row
    cleared = importer.preview(mapping, CSV.replace("u1,Ann,30", "u1,,30")).json()["rows"][0]
    assert cleared["properties"]["first_name"] is None


def test_without_an_update_timestamp_rows_are_stamped_with_the_time_of_the_request(importer):
    """The default the product document gives: the import's start; for a
    preview, the time the request arrived."""
    mapping = {key: value for key, value in MAPPING.items() if key != "update_timestamp"}
    before = time.time()
    rows = importer.preview(mapping).json()["rows"]
    after = time.time()
    stamps = {row["update_timestamp"] for row in rows if not row["error"]}
    assert len(stamps) == 1
    assert before - 1 <= stamps.pop() <= after  # requestTimeEpoch has milliseconds


def test_a_bad_mapping_shows_the_importers_problems_and_no_rows(importer):
    mapping = {
        "properties": [{"from_column": "nope", "to_property": "age", "type": "strng"}],
        "ids": [{"from_column": "idecko", "to_id": "registred"}],
    }
    preview = importer.preview(mapping).json()
    assert preview["rows"] == []
    assert preview["header"][0] == "idecko"
    importer.imports.put_mapping("crm", mapping)
    importer.imports.drop("crm", "people.csv", CSV.encode())
    assert preview["problems"] == importer.imports.report("crm", "people.csv")["problems"]
    assert len(preview["problems"]) == 3
    assert any(
        p.startswith("properties[0].type: 'strng' is not one of") for p in preview["problems"]
    )


def test_a_header_that_cannot_be_read_is_a_problem_and_no_header(importer):
    preview = importer.preview(sample="").json()
    assert preview == {
        "success": True,
        "header": None,
        "problems": ["the file has no header row"],
        "rows": [],
    }


def test_at_most_twenty_rows_are_previewed(importer):
    sample = "idecko,meno\n" + "".join(f"u{i},n{i}\n" for i in range(40))
    mapping = {"properties": [{"from_column": "meno", "to_property": "n", "type": "string"}]}
    mapping["ids"] = MAPPING["ids"]
    rows = importer.preview(mapping, sample).json()["rows"]
    assert [row["line"] for row in rows] == list(range(2, 22))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("[]", "expected a JSON object, got a list"),
        ({"sample": "a\n"}, "mapping is required"),
        ({"mapping": MAPPING}, "sample is required"),
        ({"mapping": MAPPING, "sample": 5}, "sample must be a string"),
        (
            {"mapping": MAPPING, "sample": "a" * 65537},
            "sample is 65537 bytes of UTF-8; at most 65536 bytes (64 KB) are allowed",
        ),
        (
            {"mapping": MAPPING, "sample": "a\n", "smaple": "a\n"},
            "unknown field 'smaple'; the fields are mapping, sample, file_name",
        ),
        (
            {"mapping": MAPPING, "sample": "a\n", "file_name": "people.csv.gz"},
            "file_name: the file name 'people.csv.gz' does not end in .csv: a sample is text",
        ),
        (
            {"mapping": MAPPING, "sample": "a\n", "file_name": "../x.csv"},
            "file_name: the file name '../x.csv' is not allowed",
        ),
        (
            {"mapping": {"ids": ["\ud800"]}, "sample": "a\n"},
            "mapping: value contains a lone UTF-16 surrogate",
        ),
    ],
)
def test_a_preview_body_that_breaks_a_rule_is_400(importer, body, error):
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = importer.api.request("POST", "/api/imports/preview", body=raw)
    assert answer.status == 400, answer.body
    assert answer.json()["error"].startswith(error)


# ------------------------------------------------------------------ start


def test_start_writes_the_mapping_and_answers_a_form_for_the_exact_key(importer):
    answer = importer.start(
        header=["idecko", "meno", "vek", "narodeny", "zlava", " update_timestamp"]
    )
    assert answer.status == 201, answer.body
    form = answer.json()
    key = f"imports/{PROJECT}/crm/people.csv"
    assert form["file_key"] == key
    assert (form["import_name"], form["file_name"]) == ("crm", "people.csv")
    assert form["max_bytes"] == MAX_UPLOAD_BYTES
    assert form["upload"]["fields"]["key"] == key
    assert form["upload"]["url"].endswith(f"/{importer.imports.bucket}")
    stored = importer.imports.s3.get_object(
        Bucket=importer.imports.bucket, Key=f"imports/{PROJECT}/crm/mapping.json"
    )
    assert json.loads(stored["Body"].read()) == MAPPING
    assert key not in list(importer.imports.keys())  # the file is the client's to upload


def test_the_form_uploads_the_file_and_its_execution_is_listed_and_read(importer):
    form = started(importer)
    key = form["file_key"]
    assert key in list(importer.imports.keys())
    [execution] = importer.list(file_key=key).json()["executions"]
    assert execution["file_key"] == key
    assert (execution["import_name"], execution["file_name"]) == ("crm", "people.csv")
    assert execution["status"] == "partially_succeeded"
    assert execution["progress"]["fraction"] == 1.0
    assert execution["progress"]["bytes"] == execution["progress"]["bytes_total"] == len(CSV)
    assert execution["counts"] == {
        "rows_read": 3,
        "rows_written": 2,
        "rows_rejected": 1,
        "properties_applied": 8,
        "properties_stale": 0,
        "rows_ignored_as_erased": 0,
    }
    assert execution["finished_at"] >= execution["started_at"]
    detail = importer.get(execution["execution_id"]).json()
    assert detail["execution"] == execution
    assert detail["report"] == importer.imports.report("crm", "people.csv")
    assert detail["rejected_rows"] == [
        {
            "line": 3,
            "reason": "'x' is not a number (column 'vek')",
            "row": "u2,Bob,x,1991-01-01,,1767225601",
        }
    ]
    # written as the importer writes: the customers are there
    assert importer.api.get_customer("u1", query={"id_type": "registered"}).json() == {
        "properties": {"first_name": "Ann", "age": 30, "born": 642902400, "discount": 0.25}
    }


def test_a_running_execution_has_no_report_yet(importer, dynamodb_client, table_name):
    """Even where the file's report key holds an earlier upload's report."""
    first = started(importer)
    [done] = importer.list(file_key=first["file_key"]).json()["executions"]
    importer.imports.services.imports.start("f" * 32, PROJECT, first["file_key"], 1.0)
    detail = importer.get("f" * 32).json()
    assert detail["execution"]["status"] == "running"
    assert detail["execution"]["progress"]["fraction"] == 0.0
    assert (detail["report"], detail["rejected_rows"]) == (None, [])
    assert (
        importer.get(done["execution_id"]).json()["report"]["execution_id"] == done["execution_id"]
    )


def test_a_replaced_uploads_report_is_its_own(importer):
    """An execution whose file was uploaded again before it finished wrote its
    report under keys of its own (imports.ImportFile.replaced_by_newer_upload);
    reading it finds that one, not the newer upload's."""
    services = importer.imports.services
    importer.imports.put_mapping("crm", MAPPING)
    key = f"imports/{PROJECT}/crm/people.csv"
    importer.imports.s3.put_object(Bucket=importer.imports.bucket, Key=key, Body=CSV.encode())
    head = importer.imports.s3.head_object(Bucket=importer.imports.bucket, Key=key)
    old_etag = head["ETag"].strip('"')
    importer.imports.s3.put_object(Bucket=importer.imports.bucket, Key=key, Body=b"idecko\nu9\n")
    from propsync.imports import start_execution  # noqa: PLC0415

    old = start_execution(services, key, "0001", old_etag)
    new = start_execution(services, key, "0002")
    old_detail = importer.get(old.execution_id).json()
    assert old_detail["report"]["execution_id"] == old.execution_id
    assert old_detail["execution"]["status"] == "failed"
    assert importer.get(new.execution_id).json()["report"]["execution_id"] == new.execution_id


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": ".."}, "the import name '..' is not allowed"),
        ({"name": "a/b"}, "the import name 'a/b' is not allowed"),
        ({"name": ""}, "the import name '' is not allowed"),
        ({"name": "x\u0007"}, "the import name 'x\\x07' is not allowed"),
        ({"name": "\ud800"}, "the import name must be valid unicode text"),
        ({"file_name": "people.txt"}, "the file name 'people.txt' does not end in .csv or .csv.gz"),
        ({"file_name": "/people.csv"}, "the file name '/people.csv' is not allowed"),
        ({"name": "n" * 1000}, "the key is 1"),
        ({"size": 0}, "size: 0 bytes is not allowed"),
        ({"size": MAX_UPLOAD_BYTES + 1}, f"size: {MAX_UPLOAD_BYTES + 1} bytes is not allowed"),
        ({"header": ["idecko", "meno"]}, "properties[1].from_column: 'vek' is neither a column"),
        ({"header": ["idecko", "idecko"]}, "header: the file's header repeats the column(s)"),
        ({"header": []}, "header: the file has no header row"),
        ({"mapping": {"ids": []}}, "ids: must have at least 1 entry, not 0"),
    ],
)
def test_a_start_that_breaks_a_rule_is_400_with_every_problem_and_writes_nothing(
    importer, fields, problem
):
    body = {"import_name": "crm", "file_name": "people.csv", "mapping": MAPPING}
    body.update({("import_name" if k == "name" else k): v for k, v in fields.items()})
    answer = importer.api.request("POST", "/api/imports", body=json.dumps(body))
    assert answer.status == 400, answer.body
    refused = answer.json()
    assert any(p.startswith(problem) for p in refused["problems"]), refused
    assert refused["error"] == "the import cannot start: " + "; ".join(refused["problems"])
    assert importer.imports.keys() == []


def test_every_problem_is_named_at_once(importer):
    answer = importer.start("..", "x.txt", {"ids": []}, size=-1)
    assert answer.status == 400
    assert len(answer.json()["problems"]) == 4  # import name, file name, size, mapping


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json", "Invalid JSON"),
        ({"file_name": "a.csv", "mapping": MAPPING}, "import_name is required"),
        ({"import_name": 5, "file_name": "a.csv", "mapping": MAPPING}, "import_name must be a"),
        (
            {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING, "size": "5"},
            "size must be a whole number, got a string",
        ),
        (
            {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING, "size": 1.5},
            "size must be a whole number, got a number",
        ),
        (
            {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING, "size": True},
            "size must be a whole number, got a boolean",
        ),
        (
            {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING, "header": "a,b"},
            "header must be a list, got a string",
        ),
        (
            {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING, "header": ["a", 1]},
            "header[1] must be a string",
        ),
        (
            {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING, "heder": ["a"]},
            "unknown field 'heder'; the fields are import_name, file_name, mapping, header, size",
        ),
    ],
)
def test_a_start_body_of_the_wrong_shape_is_400_and_writes_nothing(importer, body, error):
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = importer.api.request("POST", "/api/imports", body=raw)
    assert answer.status == 400, answer.body
    assert answer.json()["error"].startswith(error)
    assert importer.imports.keys() == []


# ------------------------------------------------------------------ list and get


def test_executions_are_listed_newest_first_a_page_at_a_time(importer):
    for index in range(3):
        started(importer, file_name=f"f{index}.csv")
    everything = importer.list().json()
    assert everything["next"] is None
    listed = [e["file_name"] for e in everything["executions"]]
    assert sorted(listed) == ["f0.csv", "f1.csv", "f2.csv"]
    started_at = [e["started_at"] for e in everything["executions"]]
    assert started_at == sorted(started_at, reverse=True)
    pages, query = [], {"limit": "1"}
    while True:
        page = importer.list(**query).json()
        pages += [e["execution_id"] for e in page["executions"]]
        if page["next"] is None:
            break
        query = {"limit": "1", "next": page["next"]}
        assert len(pages) <= 4
    assert pages == [e["execution_id"] for e in everything["executions"]]


def test_another_projects_executions_do_not_exist_for_a_key(importer):
    started(importer)
    [mine] = importer.list().json()["executions"]
    importer.api.access.create_project(OTHER_PROJECT, "other")
    theirs = importer.api.new_key(OTHER_PROJECT, IMPORT_ONLY)
    assert importer.list(authorization=theirs).json()["executions"] == []
    refused = importer.get(mine["execution_id"], authorization=theirs)
    assert refused.status == 404
    assert refused.json() == {"success": False, "error": "Import execution does not exist"}
    # the key of this project's file is not one of theirs
    other = importer.api.request(
        "GET", "/api/imports", query={"file_key": mine["file_key"]}, authorization=theirs
    )
    assert other.status == 400
    assert f"use imports/{OTHER_PROJECT}/<import name>/" in other.json()["error"]


@pytest.mark.parametrize("execution_id", ["nope", "0" * 31, "0" * 32, "G" * 32, "%2e%2e"])
def test_an_unknown_execution_is_404(importer, execution_id):
    answer = importer.get(execution_id)
    assert (answer.status, answer.json()["error"]) == (404, "Import execution does not exist")


def test_the_newest_execution_of_a_file_is_the_upload_just_made(importer):
    first = started(importer)
    [before] = importer.list(file_key=first["file_key"]).json()["executions"]
    started(importer, data=CSV.encode() + b"u4,Dan,50,1993-03-03,,1767225602\n")
    [after] = importer.list(file_key=first["file_key"]).json()["executions"]
    assert after["execution_id"] != before["execution_id"]
    assert after["counts"]["rows_read"] == 4
    assert importer.list(file_key=f"imports/{PROJECT}/crm/never.csv").json() == {
        "success": True,
        "executions": [],
        "next": None,
    }


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"limit": "0"}, "limit='0' is not allowed; use a whole number from 1 to 100"),
        ({"limit": "101"}, "limit='101' is not allowed"),
        ({"limit": "-1"}, "limit='-1' is not allowed"),
        ({"limit": "1e1"}, "limit='1e1' is not allowed"),
        ({"limit": "\u0661"}, "limit='\u0661' is not allowed"),
        ({"next": "x"}, "next='x' is not a token this route gave"),
        ({"next": "W10"}, "next='W10' is not a token this route gave"),  # "[]"
        ({"next": "=" * 8}, "is not a token this route gave"),
        ({"file_key": "imports/x"}, "file_key='imports/x' is not the key of an import file"),
        ({"file_key": f"imports/{PROJECT}/../x.csv"}, "is not the key of an import file"),
        ({"file_key": f"imports/{PROJECT}/crm/mapping.json"}, "is not the key of an import"),
        ({"file_key": f"imports/{PROJECT}/crm/{'x' * 2000}.csv"}, "is not the key of an"),
        ({"file_key": "\ud800"}, "is not the key of an import file"),
    ],
)
def test_hostile_query_values_are_400(importer, query, error):
    answer = importer.list(**query)
    assert answer.status == 400, answer.body
    assert error in answer.json()["error"]


# ------------------------------------------------------------------ permissions

ROUTES = [
    ("POST", "/api/imports/preview", {"mapping": MAPPING, "sample": CSV}),
    ("POST", "/api/imports", {"import_name": "a", "file_name": "a.csv", "mapping": MAPPING}),
    ("GET", "/api/imports", None),
    ("GET", f"/api/imports/{'0' * 32}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_import_route_needs_a_key_with_the_import_permission(importer, method, path, body):
    api = importer.api
    assert api.request(method, path, json_body=body, authorization=None).status == 401
    for permissions in (
        frozenset(),
        frozenset({Permission.GET_CUSTOMER_PROPERTIES.value}),
        frozenset(p.value for p in Permission) - IMPORT_ONLY,
    ):
        refused = api.request(
            method, path, json_body=body, authorization=api.new_key(PROJECT, permissions)
        )
        assert (refused.status, refused.json()) == (403, {"success": False, "error": FORBIDDEN})
    allowed = api.request(
        method, path, json_body=body, authorization=api.new_key(PROJECT, IMPORT_ONLY)
    )
    assert allowed.status in (200, 201, 404), allowed.body
    assert importer.imports.keys() == [] or method == "POST"


def test_at_most_a_hundred_rejected_rows_are_shown(importer):
    rows = "".join(f"u{i},N,x,1990-01-01,,1767225600\n" for i in range(MAX_REPORTED_ERRORS + 20))
    form = started(importer, data=CSV.split("\n", 1)[0].encode() + b"\n" + rows.encode())
    [execution] = importer.list(file_key=form["file_key"]).json()["executions"]
    detail = importer.get(execution["execution_id"]).json()
    assert len(detail["rejected_rows"]) == MAX_REPORTED_ERRORS
    assert detail["rejected_rows"][0]["row"] == "u0,N,x,1990-01-01,,1767225600"
    assert detail["rejected_rows"][-1]["line"] == MAX_REPORTED_ERRORS + 1


# ------------------------------------------------------------------ S3's own refusals
# The local S3 checks a form's policy as S3 does (propsync_local.s3_post_policy).


def test_the_form_uploads_to_its_own_key_only(importer):
    form = importer.start().json()["upload"]
    for key in (
        f"imports/{PROJECT}/crm/other.csv",
        f"imports/{OTHER_PROJECT}/crm/people.csv",
        f"imports/{PROJECT}/crm/mapping.json",
    ):
        refused = importer.upload(form, CSV.encode(), fields={**form["fields"], "key": key})
        assert refused.status_code == 403, refused.text
        assert "Invalid according to Policy: Policy Condition failed" in refused.text
    assert importer.imports.keys() == [f"imports/{PROJECT}/crm/mapping.json"]
    mapping = importer.imports.s3.get_object(
        Bucket=importer.imports.bucket,
        Key=form["fields"]["key"].rsplit("/", 1)[0] + "/mapping.json",
    )
    assert json.loads(mapping["Body"].read()) == MAPPING  # not overwritten by the upload


def test_a_form_refuses_an_empty_a_larger_or_a_late_file_and_extra_fields(importer):
    bucket = importer.imports.services.bucket
    key = f"imports/{PROJECT}/crm/people.csv"
    small = bucket.upload_form(key, max_bytes=len(CSV), expires_in=60)
    too_large = importer.upload(small, CSV.encode() + b"x")
    assert (too_large.status_code, "<Code>EntityTooLarge</Code>" in too_large.text) == (400, True)
    empty = importer.upload(small, b"")
    assert (empty.status_code, "<Code>EntityTooSmall</Code>" in empty.text) == (400, True)
    extra = importer.upload(small, CSV.encode(), fields={**small["fields"], "acl": "public-read"})
    assert extra.status_code == 403
    assert "Extra input fields: acl" in extra.text
    late = bucket.upload_form(key, max_bytes=len(CSV), expires_in=-1)
    expired = importer.upload(late, CSV.encode())
    assert (expired.status_code, "Policy expired" in expired.text) == (403, True)
    assert importer.imports.keys() == []
    assert importer.upload(small, CSV.encode()).status_code == 204  # exactly the most it takes
    assert importer.imports.keys() == [key]


def test_the_route_offers_five_gigabytes_at_most_for_an_hour(importer):
    """What the form's signed policy says (S3 checks it on AWS, the local S3
    here): the exact key, 1 byte to 5 GB, an hour."""
    import base64  # noqa: PLC0415
    from datetime import datetime  # noqa: PLC0415

    before = time.time()
    form = importer.start().json()
    policy = json.loads(base64.b64decode(form["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1, 5 * 1024**3] in policy["conditions"]
    assert {"key": form["file_key"]} in policy["conditions"]
    assert {"bucket": importer.imports.bucket} in policy["conditions"]
    expiry = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 3600 - 2 <= expiry <= time.time() + 3600
    assert abs(form["expires_at"] - expiry) <= 2
