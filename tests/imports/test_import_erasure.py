"""An import snapshot taken before an erasure, written after it, cannot bring
the erased person back: its rows are reported, write nothing and create no
customer; rows newer than the erasure start a new customer."""

from propsync import erasure
from propsync.customer_view import plain_properties
from propsync.identity import find_customer_id
from propsync.merging import read_following_merges
from tests.conftest import PROJECT

MAPPING = {
    "properties": [
        {"from_column": "name", "to_property": "name", "type": "string"},
        {"from_column": "city", "to_property": "city", "type": "string"},
    ],
    "ids": [
        {"from_column": "account", "to_id": "registered"},
        {"from_column": "device", "to_id": "cookie"},
    ],
    "constant_columns": [],
    "update_timestamp": {"from_column": "when"},
    "timezone": "UTC",
}
ERASED_AT = 1_700_000_000.0


def erase_anna(imports):
    store = imports.services.customers
    first, _ = imports.drop(
        "crm", "first.csv", b"account,device,name,city,when\nanna,d1,Anna,Brno,1600000000\n"
    )
    assert first.status == "succeeded"
    assert erasure.anonymize(store, PROJECT, {"registered": "anna"}, ERASED_AT)


def customer(imports, id_type, value):
    store = imports.services.customers
    found = find_customer_id(store, PROJECT, id_type, value)
    return None if found is None else read_following_merges(store, PROJECT, found)


def test_rows_older_than_the_erasure_write_nothing_and_are_counted(imports):
    imports.put_mapping("crm", MAPPING)
    erase_anna(imports)
    snapshot = (
        b"account,device,name,city,when\n"
        b"anna,d1,Anna,Brno,1699990000\n"  # the 8:00 snapshot, written at 10:00
        b",d1,,Olomouc,1699990001\n"  # her device alone
        b"bob,d9,Bob,Praha,1699990000\n"  # someone else, in the same file
    )
    record, _ = imports.drop("crm", "snapshot.csv", snapshot)
    assert record.status == "succeeded"
    assert record.counters["rows_erased"] == 2
    assert record.counters["rows_written"] == 1
    assert record.counters["rows_rejected"] == 0
    assert customer(imports, "registered", "anna") is None
    assert customer(imports, "cookie", "d1") is None
    assert plain_properties(customer(imports, "registered", "bob")) == {
        "name": "Bob",
        "city": "Praha",
    }


def test_a_row_newer_than_the_erasure_starts_a_new_customer(imports):
    imports.put_mapping("crm", MAPPING)
    erase_anna(imports)
    record, _ = imports.drop(
        "crm", "later.csv", b"account,device,name,city,when\nanna,,Anna,Ostrava,1700000500\n"
    )
    assert record.counters["rows_written"] == 1
    assert record.counters["rows_erased"] == 0
    anna = customer(imports, "registered", "anna")
    assert anna is not None
    assert plain_properties(anna) == {"name": "Anna", "city": "Ostrava"}  # nothing of before


def test_rows_of_one_person_around_the_erasure_keep_only_what_is_newer(imports):
    """Rows with the same ids are merged before they are written: the merged
    update keeps only the versions newer than the erasure."""
    imports.put_mapping("crm", MAPPING)
    erase_anna(imports)
    rows = (
        b"account,device,name,city,when\nanna,,Anna-old,Brno,1699990000\nanna,,,Zlin,1700000500\n"
    )
    record, _ = imports.drop("crm", "mixed.csv", rows)
    assert record.counters["rows_written"] == 2
    anna = customer(imports, "registered", "anna")
    # the newer row's empty name cell is newer than the erasure too (a
    # deletion); the older row's name and city are held back
    assert plain_properties(anna) == {"city": "Zlin"}
    assert set(anna.properties) == {"name", "city"}
    assert anna.properties["name"].timestamp == 1700000500
