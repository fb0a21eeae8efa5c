"""A small HTTP-shaped client over propsync_local.apigw.handle: requests go
through route matching, the real authorizer and the real handlers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from propsync.access import Permission, create_api_key
from propsync.container import forget_container_state
from propsync.store.access import AccessStore
from propsync_local import triggers
from propsync_local.apigw import HttpResponse, handle
from tests.support.openapi_check import check_answer

ALL_PERMISSIONS = frozenset(p.value for p in Permission)


def reset_service_caches() -> None:
    """Clients, the writers' threads and the projects' id types are kept per
    Lambda container (propsync.container); each test is a new one."""
    forget_container_state()


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


@dataclass(frozen=True)
class TrackingQueues:
    """The queue and dead-letter queue of the queued tracking mode, on moto."""

    sqs: Any
    url: str
    dead_letter_url: str

    @classmethod
    def create(cls, endpoint: str, suffix: str) -> TrackingQueues:
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-west-1")
        urls = [
            sqs.create_queue(QueueName=f"{name}-{suffix}")["QueueUrl"]
            for name in ("tracking", "tracking-dead-letters")
        ]
        return cls(sqs, urls[0], urls[1])

    def deliver(self, max_events: int | None = None) -> int:
        """Every visible message to the worker, as the event source mapping
        would deliver them (make run's own trigger), in at most ``max_events``
        SQS events; how many messages were delivered. A message the worker
        failed comes back after its retry delay (tracking_queue.retry_delay;
        a test that monkeypatches RETRY_BASE_SECONDS to 0 sees it at once, and
        bounds ``max_events``)."""
        return triggers.drain(self.sqs, self.url, "TrackingWorkerFunction", max_events=max_events)

    def dead_letters(self) -> list[dict[str, Any]]:
        """The bodies in the dead-letter queue (taken off it)."""
        bodies = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.dead_letter_url, ReceiptHandle=message["ReceiptHandle"]
                )


@dataclass
class ApiClient:
    access: AccessStore
    project: str
    key_id: str
    secret: str
    extra_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the queued tracking mode's queues; None in the synchronous mode
    queues: TrackingQueues | None = None
    # False while worker_stopped(): requests leave their messages on the queue
    delivering: bool = True

    @classmethod
    def with_new_project(
        cls, dynamodb_client: Any, table: str, project: str, queues: TrackingQueues | None = None
    ) -> ApiClient:
        access = AccessStore(dynamodb_client, table)
        access.create_project(project, "test project")
        key = create_api_key(access, project, ALL_PERMISSIONS)
        return cls(
            access=access, project=project, key_id=key.key_id, secret=key.secret, queues=queues
        )

    @contextmanager
    def worker_stopped(self) -> Iterator[TrackingQueues]:
        """Within the block the tracking routes queue their commands and
        nothing delivers them, as while the worker cannot keep up; the test
        delivers them itself (``queues.deliver``). Queued mode only."""
        assert self.queues is not None, "worker_stopped() needs the queued mode"
        self.delivering = False
        try:
            yield self.queues
        finally:
            self.delivering = True

    @property
    def queued(self) -> bool:
        """The tracking routes queue their commands (TrackingWrites=queued)."""
        return self.queues is not None

    def customer_id_of(self, ids: dict[str, str]) -> str:
        """The internal id of the customer one of ``ids`` names now (merges
        followed): what a synchronous result says as ``customer_id``."""
        from propsync.identity import find_customer_id  # noqa: PLC0415
        from propsync.merging import final_customer  # noqa: PLC0415
        from propsync.store.customers import store_from_environment  # noqa: PLC0415

        store = store_from_environment()
        for id_type, id_value in ids.items():
            found = find_customer_id(store, self.project, id_type, id_value)
            if found is not None:
                return final_customer(store, self.project, found)
        raise AssertionError(f"no customer has any of {ids}")

    @property
    def authorization(self) -> str:
        return basic(self.key_id, self.secret)

    def new_key(self, project: str, permissions: frozenset[str]) -> str:
        """Authorization header of a new key of ``project``."""
        key = create_api_key(self.access, project, permissions)
        return basic(key.key_id, key.secret)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | str | None = None,
        query: dict[str, str] | None = None,
        authorization: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if authorization == "default":
            authorization = self.authorization
        if authorization is not None:
            all_headers["Authorization"] = authorization
        if json_body is not None:
            body = json.dumps(json_body)
        response = handle(method, path, query=query, headers=all_headers, body=body)
        check_answer(method, path, response)
        if self.queues is not None and self.delivering and path.startswith("/track/"):
            self.queues.deliver()  # the worker applies what the route queued
        return response

    # --- the routes

    def batch(
        self, commands: Any = None, *, body: Any = None, project: str | None = None, **kw: Any
    ) -> HttpResponse:
        payload = {"commands": commands} if body is None else body
        raw = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        return self.request(
            "POST",
            f"/track/v2/projects/{project or self.project}/batch",
            body=raw,
            authorization=None,
            **kw,
        )

    def track_customer(self, data: Any, project: str | None = None) -> HttpResponse:
        return self.request(
            "POST",
            f"/track/v2/projects/{project or self.project}/customers",
            json_body=data,
            authorization=None,
        )

    def get_customer(self, customer_id: str, **kw: Any) -> HttpResponse:
        return self.request("GET", f"/api/customers/{customer_id}", **kw)

    def patch_customer(self, customer_id: str, payload: Any, **kw: Any) -> HttpResponse:
        return self.request("PATCH", f"/api/customers/{customer_id}", json_body=payload, **kw)

    def export_one(self, customer_ids: Any, project: str | None = None, **kw: Any) -> HttpResponse:
        return self.request(
            "POST",
            f"/data/v2/projects/{project or self.project}/customers/export-one",
            json_body={"customer_ids": customer_ids},
            **kw,
        )

    def anonymize(self, customer_ids: Any, project: str | None = None, **kw: Any) -> HttpResponse:
        return self.request(
            "POST",
            f"/data/v2/projects/{project or self.project}/customers/anonymize",
            json_body={"customer_ids": customer_ids},
            **kw,
        )

    def attributes(
        self, customer_ids: Any, attributes: Any, project: str | None = None, **kw: Any
    ) -> HttpResponse:
        return self.request(
            "POST",
            f"/data/v2/projects/{project or self.project}/customers/attributes",
            json_body={"customer_ids": customer_ids, "attributes": attributes},
            **kw,
        )

    def track(
        self, ids: dict[str, str], properties: dict[str, Any], update_timestamp: Any = None
    ) -> dict[str, Any]:
        """One customers command through the batch route; its result."""
        data: dict[str, Any] = {"customer_ids": ids, "properties": properties}
        if update_timestamp is not None:
            data["update_timestamp"] = update_timestamp
        response = self.batch([{"name": "customers", "data": data}])
        assert response.status == 200, response.body
        return response.json()["results"][0]
