"""The workload every benchmark imports: one mapping of five typed columns,
and the CSV header that goes with it."""

PROJECT = "00000000-0000-0000-0000-000000000000"
HEADER = "id,first_name,email,age,vip,signed_up\n"
MAPPING_DOCUMENT = {
    "properties": [
        {"from_column": "first_name", "to_property": "first_name", "type": "string"},
        {"from_column": "email", "to_property": "email", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "number"},
        {"from_column": "vip", "to_property": "vip", "type": "boolean"},
        {"from_column": "signed_up", "to_property": "signed_up", "type": "date"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
}
