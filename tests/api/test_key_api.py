"""GET /api/key: the calling key, as a client (the web console) reads it at
sign-in to offer only what the key may do."""

import pytest

from propsync.access import Permission
from propsync.store.access import AccessStore
from tests.conftest import PROJECT
from tests.support.api import basic

OTHER_PROJECT = "22222222-2222-2222-2222-222222222222"


def test_the_key_its_project_sorted_permissions_and_the_projects_id_types(api):
    answer = api.request("GET", "/api/key")
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "success": True,
        "key_id": api.key_id,
        "project": PROJECT,
        "permissions": sorted(p.value for p in Permission),
        "id_types": [{"name": "cookie", "kind": "soft"}, {"name": "registered", "kind": "hard"}],
    }


def test_any_valid_key_may_ask_whatever_its_permissions(api):
    for permissions in (frozenset(), frozenset({Permission.SET_CUSTOMER_PROPERTIES.value})):
        answer = api.request("GET", "/api/key", authorization=api.new_key(PROJECT, permissions))
        assert answer.status == 200, answer.body
        assert answer.json()["permissions"] == sorted(permissions)


def test_an_id_type_added_to_the_project_is_listed_with_its_kind(api):
    access: AccessStore = api.access
    access.create_project(OTHER_PROJECT, "other")
    access.add_id_type(OTHER_PROJECT, "crm_id", hard=True)
    access.add_id_type(OTHER_PROJECT, "email", hard=False)
    header = api.new_key(OTHER_PROJECT, frozenset({Permission.GET_CUSTOMER_PROPERTIES.value}))
    answer = api.request("GET", "/api/key", authorization=header).json()
    assert answer["project"] == OTHER_PROJECT
    assert answer["id_types"] == [
        {"name": "cookie", "kind": "soft"},
        {"name": "crm_id", "kind": "hard"},
        {"name": "email", "kind": "soft"},
        {"name": "registered", "kind": "hard"},
    ]


@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [
        (None, 401, "Access key not provided"),
        (basic("no-such-key", "secret"), 401, "Access key not found"),
    ],
)
def test_a_missing_or_unknown_key_is_refused(api, authorization, status, error):
    answer = api.request("GET", "/api/key", authorization=authorization)
    assert (answer.status, answer.json()) == (status, {"success": False, "error": error})


def test_a_wrong_secret_is_403(api):
    answer = api.request("GET", "/api/key", authorization=basic(api.key_id, "wrong"))
    assert (answer.status, answer.json()["error"]) == (403, "invalid secret")
