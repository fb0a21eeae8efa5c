"""Secrets and property values never reach the logs at INFO, across a full
flow: in the queued mode the tracking worker's lines too (a message applied,
failed and coming back, a command dead-lettered with its error)."""

import json
import logging

import pytest

from propsync.id_type_cache import forget_id_types
from propsync.store.dynamo import client_and_table_from_environment
from propsync.tracking import RETRY_LATER
from tests.support.api import basic
from tests.support.faults import FaultInjector
from tests.support.tracking_modes import accepted, assert_all_applied

VALUE = "value-that-must-not-be-logged-8c1f"
NAME_VALUE = "Zuzana-private-name-77"
RETRIED_VALUE = "retried-value-that-must-not-be-logged-31d7"
REFUSED_VALUE = "refused-value-that-must-not-be-logged-0b9e"
# ids are personal too: the refusal's sentence quotes them (answered, and
# kept beside the dead letter), the log lines do not
REFUSED_ID = "refused-id-that-must-not-be-logged-7c21"
REFUSED_EMAIL = "refused-email-not-logged@example.com"


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    monkeypatch.setattr("propsync.tracking_queue.RETRY_BASE_SECONDS", 0)


def _track_through_failing_writes(api):
    """A command whose writes fail until the store recovers: in the synchronous
    mode its answer says to retry; in the queued mode the worker fails its
    message (logging why), which comes back and is applied."""
    faults = FaultInjector(
        probability=1.0,
        kinds=("throttling", "internal"),
        should_fail=lambda op, params: (
            op == "UpdateItem" and RETRIED_VALUE.encode() in params["body"]
        ),
    ).attach(client_and_table_from_environment()[0])
    ids, properties = {"registered": "retried-user"}, {"note": RETRIED_VALUE}
    if not api.queued:
        assert api.track(ids, properties, 10)["errors"] == [RETRY_LATER]
    else:
        with api.worker_stopped():
            assert api.track(ids, properties, 10) == accepted()
        assert api.queues.deliver(max_events=1) == 1  # failed: it comes back
    faults.probability = 0.0
    if api.queued:
        assert api.queues.deliver() == 1
        assert_all_applied(api)
    else:
        api.track(ids, properties, 10)
    read = api.get_customer("retried-user", query={"id_type": "registered"})
    assert read.json() == {"properties": properties}
    assert faults.injected.total() > 0


def _track_a_command_the_store_refuses(api):
    """Ids of two customers that never merge: a 409 answer, or in the queued
    mode a command dead-lettered with its error, logged by the worker."""
    api.access.add_id_type(api.project, "email", hard=True)
    forget_id_types()
    api.track({"registered": REFUSED_ID}, {"a": 1}, 10)
    api.track({"registered": "else", "email": REFUSED_EMAIL}, {"a": 1}, 10)
    result = api.track(
        {"registered": REFUSED_ID, "email": REFUSED_EMAIL}, {"note": REFUSED_VALUE}, 20
    )
    if not api.queued:
        assert "never merged" in result["errors"][0]
    else:
        assert result == accepted()
        [letter] = api.queues.dead_letters()
        assert letter["commands"][0]["data"]["properties"] == {"note": REFUSED_VALUE}


def test_a_full_flow_logs_neither_secrets_nor_values(api, imports, capsys, caplog, monkeypatch):
    caplog.set_level(logging.INFO)  # what Lambda keeps: INFO and above
    monkeypatch.setenv("PROPSYNC_IMPORT_BUCKET", imports.bucket)
    wrong_secret = "wrong-secret-that-must-not-be-logged-5e2a"

    tracked = api.track(
        {"registered": "private-user"}, {"note": VALUE, "first_name": NAME_VALUE}, 10
    )
    if not api.queued:
        customer = tracked["customer_id"]
    else:
        assert tracked == accepted()
        customer = api.customer_id_of({"registered": "private-user"})
    api.batch(
        [
            {
                "name": "customers",
                "data": {"customer_ids": {"registered": "x"}, "properties": {"bad\n": VALUE}},
            }
        ]
    )
    api.get_customer(customer, query={"include_timestamps": "1"})
    api.patch_customer(customer, {"properties": {"note": VALUE + "-edited"}})
    api.export_one({"registered": "private-user"})
    api.attributes(
        {"registered": "private-user"},
        [{"type": "property", "property": "note"}, {"type": "consent", "category": "x"}],
        query={"include_timestamps": "1"},
    )
    api.get_customer(customer, authorization=basic(api.key_id, wrong_secret))
    _track_through_failing_writes(api)
    _track_a_command_the_store_refuses(api)
    imports.put_mapping(
        "logs",
        {
            "properties": [{"from_column": "v", "to_property": "v", "type": "number"}],
            "ids": [{"from_column": "id", "to_id": "registered"}],
        },
    )
    imports.drop("logs", "f.csv", f"id,v\nprivate-user,{VALUE}\nother,1\n".encode())
    # the import routes: a preview of the same rows, a start and its form
    mapping = {
        "properties": [{"from_column": "v", "to_property": "v", "type": "string"}],
        "ids": [{"from_column": "id", "to_id": "registered"}],
    }
    sample = f"id,v\nprivate-user,{VALUE}\n{REFUSED_ID},\x01{NAME_VALUE}\n"
    preview = api.request(
        "POST", "/api/imports/preview", json_body={"mapping": mapping, "sample": sample}
    )
    assert preview.json()["rows"][0]["properties"] == {"v": VALUE}
    started = api.request(
        "POST",
        "/api/imports",
        json_body={"import_name": "logs", "file_name": "g.csv", "mapping": mapping},
    )
    form_secrets = [started.json()["upload"]["fields"][f] for f in ("policy", "x-amz-signature")]
    listed = api.request("GET", "/api/imports").json()["executions"]
    api.request("GET", f"/api/imports/{listed[0]['execution_id']}")

    captured = capsys.readouterr()
    logged = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
    logged += json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "credential accepted" in logged  # the flow did log
    assert "import chunk done" in logged
    assert "customers command failed" in logged  # the failing writes, in either mode
    if api.queued:  # and the worker's lines, of each kind
        for line in (
            "tracking message applied",
            "tracking command can never be applied: dead-lettered",
        ):
            assert line in logged, line
    for secret in (
        api.secret,
        wrong_secret,
        VALUE,
        NAME_VALUE,
        RETRIED_VALUE,
        REFUSED_VALUE,
        REFUSED_ID,
        REFUSED_EMAIL,
        *form_secrets,
    ):
        assert secret not in logged
