"""Merging customers through the real handlers: the flows of a customer data
platform (an anonymous visitor logs in, in one request or within one batch),
a cookie on a shared computer, late updates to a profile merged away, and the
routes that read a customer after a merge.

In the queued mode the routes answer a command they accept with its
acceptance alone, and the worker merges: what the synchronous answer says
(customer_id, merged, moved_ids) is read back from the store instead, and a
merge the store refuses lands in the dead-letter queue with its error."""

from propsync.id_type_cache import forget_id_types
from propsync.store.access import AccessStore
from tests.api.test_batch_order import customers_command
from tests.support.tracking_modes import accepted, assert_all_applied


def ids_of_export(api, customer_ids):
    response = api.export_one(customer_ids)
    assert response.status == 200, response.body
    return response.json()


def tracked(api, ids, properties, update_timestamp):
    """Track one command in either mode: its answer, and the internal id of
    the customer it landed on (the synchronous answer's, or read back)."""
    result = api.track(ids, properties, update_timestamp)
    if not api.queued:
        return result, result["customer_id"]
    assert result == accepted()
    assert_all_applied(api)
    return result, api.customer_id_of(ids)


def test_the_login_merges_the_anonymous_profile_into_the_account(api):
    _, account = tracked(api, {"registered": "anna"}, {"email": "anna@old", "tier": "gold"}, 100)
    _, anonymous = tracked(api, {"cookie": "c1"}, {"email": "anna@new", "last_page": "/shoes"}, 200)
    assert anonymous != account

    login, destination = tracked(
        api, {"registered": "anna", "cookie": "c1"}, {"logged_in": True}, 300
    )

    assert login["success"] is True
    assert destination == account  # created first: the destination
    if not api.queued:
        assert login["customer_id"] == account
        assert login["merged"] == [anonymous]
    assert api.customer_id_of({"cookie": "c1"}) == account
    expected = {"email": "anna@new", "tier": "gold", "last_page": "/shoes", "logged_in": True}
    for path_id, query in (
        (account, None),
        (anonymous, None),  # the merged-away internal id reads the destination
        ("anna", {"id_type": "registered"}),
        ("c1", {"id_type": "cookie"}),
    ):
        read = api.get_customer(path_id, query=query)
        assert read.status == 200, (path_id, read.body)
        assert read.json() == {"properties": expected}


def test_the_same_two_commands_in_one_batch_end_with_one_customer(api):
    _, account = tracked(api, {"registered": "anna"}, {"tier": "gold"}, 100)

    results = api.batch(
        [
            customers_command({"cookie": "c1"}, {"last_page": "/shoes"}, 200),
            customers_command({"registered": "anna", "cookie": "c1"}, {"logged_in": True}, 300),
        ]
    ).json()["results"]

    anonymous, login = results
    assert anonymous["success"] is True
    if not api.queued:
        assert login["customer_id"] == account
        assert login["merged"] == [anonymous["customer_id"]]
    else:
        assert results == [accepted(), accepted()]
        assert_all_applied(api)
    assert api.customer_id_of({"cookie": "c1"}) == account
    exported = ids_of_export(api, {"cookie": "c1"})
    assert exported["ids"] == {"cookie": ["c1"], "registered": "anna"}
    assert exported["properties"] == {"tier": "gold", "last_page": "/shoes", "logged_in": True}


def test_export_one_after_a_merge_lists_both_ids(api):
    api.track({"registered": "anna"}, {"tier": "gold"}, 100)
    api.track({"cookie": "c1"}, {"last_page": "/shoes"}, 200)
    api.track({"registered": "anna", "cookie": "c1"}, {}, 300)

    by_cookie = ids_of_export(api, {"cookie": "c1"})
    by_account = ids_of_export(api, {"registered": "anna"})
    both = ids_of_export(api, {"registered": "anna", "cookie": "c1"})

    assert by_cookie == by_account == both
    assert by_cookie["properties"] == {"tier": "gold", "last_page": "/shoes"}
    assert by_cookie["ids"] == {"cookie": ["c1"], "registered": "anna"}


def test_a_cookie_of_another_account_moves_to_the_account_that_logs_in(api):
    """A shared computer: bob's cookie, then anna logs in on it."""
    _, bob = tracked(api, {"registered": "bob", "cookie": "shared"}, {"name": "Bob"}, 100)

    answer, anna = tracked(api, {"registered": "anna", "cookie": "shared"}, {"name": "Anna"}, 200)

    assert anna != bob
    if not api.queued:
        assert answer["customer_id"] == anna
        assert answer["moved_ids"] == {"cookie": "shared"}
        assert "merged" not in answer
    # the cookie moved to anna, and bob was not merged into anyone
    assert api.customer_id_of({"cookie": "shared"}) == anna
    assert api.customer_id_of({"registered": "bob"}) == bob
    by_cookie = api.get_customer("shared", query={"id_type": "cookie"}).json()
    assert by_cookie == {"properties": {"name": "Anna"}}
    bob_now = api.get_customer(bob).json()
    assert bob_now == {"properties": {"name": "Bob"}}  # nothing else of bob moved
    assert ids_of_export(api, {"registered": "bob"})["ids"] == {"registered": "bob"}


def test_a_late_update_to_the_merged_away_profile_lands_on_the_destination(api):
    _, account = tracked(api, {"registered": "anna"}, {"tier": "gold"}, 100)
    _, anonymous = tracked(api, {"cookie": "c1"}, {"email": "anna@anon"}, 200)
    tracked(api, {"registered": "anna", "cookie": "c1"}, {"email": "anna@login"}, 300)

    # an SDK batch sent hours late, from before the login, by the old cookie
    late, landed_on = tracked(api, {"cookie": "c1"}, {"email": "anna@late", "coupon": "X1"}, 150)
    # and an edit by the merged-away internal id
    edit = api.patch_customer(anonymous, {"properties": {"note": "vip"}})

    assert landed_on == account
    if not api.queued:
        assert late["customer_id"] == account
        assert (late["applied"], late["stale"]) == (["coupon"], ["email"])
    assert edit.status == 200, edit.body
    assert edit.json()["customer_id"] == account
    # the coupon applied, the late email stale (in the queued mode, its only witness)
    read = api.get_customer(account).json()["properties"]
    assert read == {"tier": "gold", "email": "anna@login", "coupon": "X1", "note": "vip"}
    # nothing was written to the merged-away profile: it is not resurrected
    again = api.get_customer(anonymous).json()["properties"]
    assert again == read


def test_customers_with_different_hard_ids_are_never_merged(api, dynamodb_client, table_name):
    access = AccessStore(dynamodb_client, table_name)
    access.add_id_type(api.project, "email", hard=True)
    forget_id_types()  # a new container: the id type is known at once
    _, anna = tracked(api, {"registered": "anna"}, {"name": "Anna"}, 100)
    _, bob = tracked(api, {"registered": "bob", "email": "bob@x"}, {"name": "Bob"}, 100)

    conflicting = {
        "customer_ids": {"registered": "anna", "email": "bob@x"},
        "properties": {"name": "?"},
    }
    single = api.track_customer(conflicting)
    single_dead = api.queues.dead_letters() if api.queued else []
    in_batch = api.track({"registered": "anna", "email": "bob@x"}, {"name": "?"}, 200)
    in_batch_dead = api.queues.dead_letters() if api.queued else []

    if not api.queued:
        assert single.status == 409, single.body
        errors = single.json()["errors"]
        assert in_batch["success"] is False
        assert in_batch["errors"] == errors
    else:
        # found only when the worker writes: accepted, then dead-lettered with the error
        assert (single.status, single.json()) == (200, accepted()), single.body
        assert in_batch == accepted()
        [single_letter], [batch_letter] = single_dead, in_batch_dead
        assert single_letter["request_id"] == single.headers["x-amzn-RequestId"]
        assert single_letter["commands"] == [{"name": "customers", "data": conflicting}]
        assert batch_letter["commands"] == [
            customers_command({"registered": "anna", "email": "bob@x"}, {"name": "?"}, 200)
        ]
        [single_error], [batch_error] = single_letter["errors"], batch_letter["errors"]
        assert single_error["status"] == batch_error["status"] == 409
        errors = single_error["errors"]
        assert batch_error["errors"] == errors
        assert_all_applied(api)  # nothing left to come back
    assert len(errors) == 1
    assert "customers with different hard ids are never merged" in errors[0]
    for customer, name in ((anna, "Anna"), (bob, "Bob")):
        read = api.get_customer(customer).json()
        assert read == {"properties": {"name": name}}


def test_an_id_type_the_project_does_not_know_is_refused_everywhere(api):
    result = api.track_customer({"customer_ids": {"registred": "anna"}, "properties": {"a": 1}})
    by_path = api.get_customer("anna", query={"id_type": "registred"})
    export = api.export_one({"registred": "anna"})

    sentence = "id type 'registred' is not known to this project; known id types: "
    assert result.status == 400
    assert result.json()["errors"][0].startswith(sentence)
    for answer in (by_path, export):
        assert answer.status == 400, answer.body
        assert answer.json()["error"].startswith(sentence)
    assert api.export_one({"registered": "anna"}).status == 404  # nothing was created
    if api.queued:  # refused at once: nothing was queued
        assert_all_applied(api)
