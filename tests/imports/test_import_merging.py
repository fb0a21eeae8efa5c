"""Import rows with several ids follow the rules of tracking commands: a row
whose ids belong to several customers merges them, newer property winning,
and a row of customers that never merge is rejected and writes nothing."""

from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id, resolve_customer
from propsync.merge_rule import PropertyVersion
from propsync.merging import read_following_merges
from tests.conftest import PROJECT

MAPPING = {
    "properties": [
        {"from_column": "name", "to_property": "name", "type": "string"},
        {"from_column": "when", "to_property": "seen", "type": "string"},
    ],
    "ids": [
        {"from_column": "account", "to_id": "registered"},
        {"from_column": "device", "to_id": "cookie"},
    ],
    "constant_columns": [],
    "update_timestamp": {"from_column": "when"},
    "timezone": "UTC",
}


def read(imports, id_type, value):
    store = imports.services.customers
    return read_following_merges(store, PROJECT, find_customer_id(store, PROJECT, id_type, value))


def test_a_row_naming_an_anonymous_device_and_an_account_merges_them(imports):
    store = imports.services.customers
    account = resolve_customer(store, PROJECT, {"registered": "anna"}).customer_id
    store.write_properties(PROJECT, account, {"name": PropertyVersion('"Anna (CRM)"', 500.0)})
    device = resolve_customer(store, PROJECT, {"cookie": "d1"}).customer_id
    store.write_properties(PROJECT, device, {"name": PropertyVersion('"anonymous"', 100.0)})
    imports.put_mapping("crm", MAPPING)

    record, _ = imports.drop("crm", "a.csv", b"account,device,name,when\nanna,d1,Anna,300\n")

    assert record.status == "succeeded"
    merged = read(imports, "cookie", "d1")
    assert merged.customer_id == account  # created first
    assert merged.ids == {"cookie": ["d1"], "registered": ["anna"]}
    # the CRM's name (500) is newer than the row's (300), the row's seen is new
    assert plain_properties(merged) == {"name": "Anna (CRM)", "seen": "300"}
    assert read_following_merges(store, PROJECT, device).customer_id == account


def test_a_row_of_two_accounts_moves_the_device_and_merges_nothing(imports):
    store = imports.services.customers
    bob = resolve_customer(store, PROJECT, {"registered": "bob", "cookie": "shared"}).customer_id
    imports.put_mapping("crm", MAPPING)

    record, _ = imports.drop("crm", "b.csv", b"account,device,name,when\nanna,shared,Anna,300\n")

    assert record.status == "succeeded"
    anna = read(imports, "registered", "anna")
    assert anna.customer_id != bob
    assert anna.ids == {"cookie": ["shared"], "registered": ["anna"]}
    assert store.read_customer(PROJECT, bob).ids == {"registered": ["bob"]}
