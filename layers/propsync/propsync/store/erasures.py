"""Erasure marks (``<project>#erased#<hash>``, ``erased_at``): for each id of
an erased customer, a salted hash of the id and when it was erased, nothing
else (propsync.erasure computes the hashes). A mark only ever moves forward:
an id erased twice keeps the later time. Marks are read with the identity
items of the same ids (IdentityStore.lookup_with_erasures)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from propsync.store.access import AccessStore
from propsync.store.dynamo import is_conditional_failure, number

if TYPE_CHECKING:  # stubs are a dev dependency only
    from mypy_boto3_dynamodb import DynamoDBClient


def erasure_key(project: str, id_hash: str) -> str:
    return f"{project}#erased#{id_hash}"


class ErasureStore:
    """When ids (by their salted hashes) were erased."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._client = client
        self._table = table_name
        self._access = AccessStore(client, table_name)

    def salt(self, project: str) -> str | None:
        """The key of the project's hashes (kept on its project item); None
        when there is no such project."""
        return self._access.erasure_salt(project)

    def mark(self, project: str, id_hashes: Iterable[str], erased_at: float) -> None:
        """Record ``erased_at`` for each hash, unless it holds a later time."""
        for id_hash in sorted(set(id_hashes)):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": erasure_key(project, id_hash)}},
                    UpdateExpression="SET erased_at = :at",
                    ConditionExpression="attribute_not_exists(erased_at) OR erased_at < :at",
                    ExpressionAttributeValues={":at": {"N": number(erased_at)}},
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
