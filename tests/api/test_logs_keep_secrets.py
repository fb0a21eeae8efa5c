"""Secrets and property values never reach the logs at INFO, across a full flow."""

import json
import logging

from tests.support.api import basic

VALUE = "value-that-must-not-be-logged-8c1f"
NAME_VALUE = "Zuzana-private-name-77"


def test_a_full_flow_logs_neither_secrets_nor_values(api, imports, capsys, caplog):
    caplog.set_level(logging.INFO)  # what Lambda keeps: INFO and above
    wrong_secret = "wrong-secret-that-must-not-be-logged-5e2a"

    tracked = api.track(
        {"registered": "private-user"}, {"note": VALUE, "first_name": NAME_VALUE}, 10
    )
    customer = tracked["customer_id"]
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
    api.get_customer(customer, authorization=basic(api.key_id, wrong_secret))
    imports.put_mapping(
        "logs",
        {
            "properties": [{"from_column": "v", "to_property": "v", "type": "number"}],
            "ids": [{"from_column": "id", "to_id": "registered"}],
        },
    )
    imports.drop("logs", "f.csv", f"id,v\nprivate-user,{VALUE}\nother,1\n".encode())

    captured = capsys.readouterr()
    logged = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
    logged += json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "credential accepted" in logged  # the flow did log
    assert "import chunk done" in logged
    for secret in (api.secret, wrong_secret, VALUE, NAME_VALUE):
        assert secret not in logged
