"""A small HTTP-shaped client over propsync_local.apigw.handle: requests go
through route matching, the real authorizer and the real handlers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from propsync.access import Permission, create_api_key
from propsync.container import forget_container_state
from propsync.store.access import AccessStore
from propsync_local.apigw import HttpResponse, handle
from tests.support.openapi_check import check_answer

ALL_PERMISSIONS = frozenset(p.value for p in Permission)


def reset_service_caches() -> None:
    """Clients, the writers' threads and the projects' id types are kept per
    Lambda container (propsync.container); each test is a new one."""
    forget_container_state()


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


@dataclass
class ApiClient:
    access: AccessStore
    project: str
    key_id: str
    secret: str
    extra_keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def with_new_project(cls, dynamodb_client: Any, table: str, project: str) -> ApiClient:
        access = AccessStore(dynamodb_client, table)
        access.create_project(project, "test project")
        key = create_api_key(access, project, ALL_PERMISSIONS)
        return cls(access=access, project=project, key_id=key.key_id, secret=key.secret)

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
