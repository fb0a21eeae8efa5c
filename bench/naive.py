"""Two designs a reader might write instead of propsync's, for `make bench` to
run beside it: same commands, same DynamoDB fake, same thread pool. They keep
the newer-wins rule, so they are correct; they only spend more requests.

- one ``UpdateItem`` per property: each property written on its own with its
  own condition (the rule per attribute, one request each);
- read-then-write: read the customer, decide the winners in Python, write them
  (a read per command, and under contention a lost race to retry).

Both look the customer up by its id with a ``GetItem`` per command, as a
first version would; propsync looks a whole batch up with one ``BatchGetItem``.
Customers must exist (the benchmark seeds them): these baselines do not
create any.
"""

from __future__ import annotations

from typing import Any

from propsync.customer_updates import prepare_property_versions, run_concurrently
from propsync.merge_rule import winners
from propsync.store.conditional import conditional_update, customer_key, properties_of
from propsync.store.identities import identity_key

Command = dict[str, Any]


def _owner(client: Any, table: str, project: str, command: Command) -> str:
    id_type, id_value = next(iter(command["data"]["customer_ids"].items()))
    item = client.get_item(
        TableName=table,
        Key={"pk": {"S": identity_key(project, id_type, id_value)}},
        ConsistentRead=True,
    )["Item"]
    return str(item["cid"]["S"])


def _versions(command: Command) -> dict[str, Any]:
    data = command["data"]
    return prepare_property_versions(data["properties"], float(data["update_timestamp"]))


def update_per_property(client: Any, table: str, project: str, commands: list[Command]) -> None:
    def run(command: Command) -> None:
        key = customer_key(project, _owner(client, table, project, command))
        for name, version in _versions(command).items():
            client.update_item(**conditional_update(table, key, {name: version}))

    run_concurrently(commands, run)


def read_then_write(client: Any, table: str, project: str, commands: list[Command]) -> None:
    def run(command: Command) -> None:
        key = customer_key(project, _owner(client, table, project, command))
        stored = client.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
        winning = winners(_versions(command), properties_of(stored.get("Item", {})))
        if winning:
            client.update_item(**conditional_update(table, key, winning))

    run_concurrently(commands, run)


# name -> design, in the order make bench reports them
DESIGNS = {"update_per_property": update_per_property, "read_then_write": read_then_write}
