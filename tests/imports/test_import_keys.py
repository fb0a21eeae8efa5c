"""Import names and file names become parts of report keys: a key whose parts
could lead a report out of reports/<project token>/ (".", "..", an empty
part, a backslash, a control character) or past S3's key length is refused,
with a failed report at a key none of those parts takes part in."""

import json
import posixpath
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propsync import admin
from propsync.imports import MAX_DATA_KEY_BYTES, REFUSED_FOLDER, import_file, start_execution
from tests.conftest import PROJECT
from tests.support.api import reset_service_caches

MAPPING = {
    "properties": [{"from_column": "n", "to_property": "n", "type": "number"}],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
DATA = b"id,n\nm1,1\n"


def assert_inside_the_projects_reports(key: str, project: str = PROJECT) -> None:
    """``key`` is under reports/<project>/ on every system that reads keys as
    paths, and S3 can store it."""
    prefix = f"reports/{project}/"
    assert key.startswith(prefix), key
    for part in key.removeprefix(prefix).split("/"):
        assert part not in {"", ".", ".."}, key
        assert "\\" not in part, key
        assert not any(unicodedata.category(char) == "Cc" for char in part), key
    assert posixpath.normpath(key) == key
    assert len(key.encode()) <= 1024


def derived_keys(target) -> list[str]:
    if target.problem is not None:
        return [target.report_key]
    return [
        target.report_key,
        target.rejected_key,
        # the longest part file name: the last chunk's piece with the most lines
        target.parts_prefix("e" * 32) + f"999999.{'9' * 10}_{'9' * 10}.rejected.csv",
        target.parts_prefix(None) + "000000.failed.json",
    ]


names = st.one_of(
    st.sampled_from(["", ".", "..", "...", "a/..", "../a", "a\\..\\b", "a\nb", " ", "crm"]),
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], include_characters="./\\\x00\n"),
        max_size=12,
    ),
)


KEYS = settings(max_examples=500)


@KEYS
@given(project=st.one_of(st.just(PROJECT), names), name=names, file_name=names)
def test_no_data_key_makes_a_report_key_outside_its_projects_reports(project, name, file_name):
    key = f"imports/{project}/{name}/{file_name}.csv"
    target = import_file(key)
    assert target is not None  # a data file: the S3 notification starts a function for it
    if not target.reportable:  # refused in the log only
        assert target.problem is not None
        return
    for derived in derived_keys(target):
        assert_inside_the_projects_reports(derived, target.project)
    if name in {"", ".", ".."} or "\\" in name or "/" in name:
        assert target.problem is not None


@pytest.mark.parametrize(
    "key",
    [
        f"imports/{PROJECT}/./f.csv",
        f"imports/{PROJECT}/../f.csv",
        f"imports/{PROJECT}//f.csv",
        f"imports/{PROJECT}/crm/../f.csv",  # one level too deep
        f"imports/{PROJECT}/f.csv",  # no import name
        f"imports/{PROJECT}/..\\..\\crm/f.csv",
        f"imports/{PROJECT}/crm\r\nx/f.csv",
        f"imports/{PROJECT}/crm/..",  # not a data file name at all: ignored
    ],
)
def test_refused_keys_fail_with_a_report_under_the_projects_reports(imports, key):
    target = import_file(key)
    if target is None:
        assert start_execution(imports.services, key, "1") is None
        return
    imports.put_mapping("crm", MAPPING)
    # (the object itself is never read: the key is refused first)
    record = imports.deliver(key, "00A1")

    assert record.status == "failed"
    [report_key] = [k for k in imports.keys("reports/") if not k.endswith("mapping.json")]
    assert report_key.startswith(f"reports/{PROJECT}/{REFUSED_FOLDER}/")
    assert_inside_the_projects_reports(report_key)
    report = imports.report_at(report_key)
    assert report["status"] == "failed"
    assert report["file"] == key
    assert "is not allowed" in report["problems"][0] or "is not imports/" in report["problems"][0]
    assert report["rows_written"] == 0
    assert imports.services.customers.identities.lookup(PROJECT, [("registered", "m1")]) == {}


def test_a_key_too_long_for_its_reports_is_refused(imports):
    name = "n" * (MAX_DATA_KEY_BYTES - len(f"imports/{PROJECT}//f.csv") + 1)
    key = f"imports/{PROJECT}/{name}/f.csv"
    assert len(key) == MAX_DATA_KEY_BYTES + 1
    imports.put_mapping(name, MAPPING)
    imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=DATA)

    record = imports.deliver(key, "00A2")

    assert record.status == "failed"
    report = imports.report_at(import_file(key).report_key)
    assert f"use at most {MAX_DATA_KEY_BYTES} bytes" in report["problems"][0]
    # one byte shorter is imported
    shorter = f"imports/{PROJECT}/{name[1:]}/f.csv"
    imports.put_mapping(name[1:], MAPPING)
    imports.s3.put_object(Bucket=imports.bucket, Key=shorter, Body=DATA)
    assert imports.deliver(shorter, "00A3").status == "succeeded"


@pytest.mark.parametrize("project", ["..", ".", ""])
def test_a_key_without_a_safe_project_part_is_refused_in_the_log_only(imports, project, caplog):
    """No report: there is no project folder to write it in, and writing it
    under the raw part would be the very escape."""
    key = f"imports/{project}/crm/f.csv"

    assert imports.deliver(key, "00A4") is None

    assert imports.keys("reports/") == []
    assert "import key refused" in caplog.text


IMPORT_NAMES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
sequencers = iter(range(10**9))


@IMPORT_NAMES
@given(name=names)
def test_any_import_name_ends_with_a_report_inside_the_projects_reports(imports, name):
    key = f"imports/{PROJECT}/{name}/f.csv"
    if import_file(key).problem is None:  # a refused key's object is never read
        imports.s3.put_object(Bucket=imports.bucket, Key=key, Body=DATA)
        imports.put_mapping(name, MAPPING)
    before = set(imports.keys("reports/"))

    record = imports.deliver(key, f"{next(sequencers):08X}")

    assert record is not None
    assert record.status != "running"
    [report_key] = set(imports.keys("reports/")) - before or [import_file(key).report_key]
    assert_inside_the_projects_reports(report_key)
    assert imports.report_at(report_key)["file"] == key


@pytest.mark.parametrize("name", ["..", ".", "a\\b", "a/b"])
def test_the_admin_import_refuses_such_names_before_uploading(name, tmp_path, capsys):
    data = tmp_path / "people.csv"
    data.write_bytes(DATA)
    code = admin.main(["import", "--project", PROJECT, "--name", name, str(data)])
    assert code == 1
    assert "is not allowed" in capsys.readouterr().err


def test_the_admin_import_uploads_nothing_when_the_file_cannot_be_read(
    imports, tmp_path, capsys, monkeypatch
):
    """A mistyped data file path must not leave the new mapping.json behind."""
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"properties": [], "ids": []}))
    code = admin.main(
        [
            "import",
            *("--project", PROJECT, "--name", "crm", "--mapping", str(mapping)),
            str(tmp_path / "missing.csv"),
        ]
    )
    assert code == 1
    assert "cannot read" in capsys.readouterr().err
    assert imports.keys("imports/") == []


@pytest.mark.parametrize("variable", ["PROPSYNC_IMPORT_BUCKET", "PROPSYNC_TABLE_NAME"])
def test_the_admin_import_names_a_missing_setting_without_a_traceback(
    imports, table_name, tmp_path, capsys, monkeypatch, variable
):
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    monkeypatch.setenv("PROPSYNC_TABLE_NAME", table_name)
    monkeypatch.delenv(variable)
    reset_service_caches()  # the clients are made once per process, from the environment
    data = tmp_path / "people.csv"
    data.write_bytes(DATA)
    code = admin.main(["import", "--project", PROJECT, "--name", "crm", str(data)])
    assert code == 1
    assert f"{variable} is not set" in capsys.readouterr().err
    assert imports.keys("imports/") == []
