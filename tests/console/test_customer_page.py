"""The console's sign-in and customer page in chromium against `make run`:
what a person sees and does, checked against what the API then holds."""

from __future__ import annotations

import time
import unicodedata
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect

from propsync.store.conditional import ID_SET_PREFIX, customer_key
from propsync_local.stack import SAMPLE_CUSTOMER_ID, SAMPLE_CUSTOMER_PROPERTIES
from tests.console.conftest import TIMEZONE, api_call, basic, create_key, track
from tests.console.pages import find, local_date_time, open_console, row, sign_in

pytestmark = pytest.mark.usefixtures("stack")


def customer_with_ids(stack: dict[str, Any], value: str) -> dict[str, Any]:
    status, answer = api_call(
        stack,
        "GET",
        f"/api/customers/{value}?id_type=registered&include_timestamps=1",
        authorization=basic(stack["api_key_id"], stack["api_secret"]),
    )
    assert status == 200, answer
    return answer["properties"]  # type: ignore[no-any-return]


def test_sign_in_shows_the_key_its_project_and_its_sections(page, stack):
    sign_in(page, stack)

    expect(page.get_by_text(f"Key demo-key · project {stack['project_token']}")).to_be_visible()
    nav = page.get_by_role("navigation", name="Console sections")
    expect(nav.get_by_role("link", name="Customers")).to_be_visible()
    expect(nav.get_by_role("link", name="Imports", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="Customers")).to_be_visible()
    # the key is in this tab's session storage only: no cookie, nothing kept
    stored = page.evaluate("() => [sessionStorage.length, localStorage.length]")
    assert stored == [1, 0]
    assert page.context.cookies() == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    expect(page.get_by_label("API key id")).to_be_focused()


def test_a_wrong_secret_is_said_in_words(page, stack):
    open_console(page, stack)
    page.get_by_label("API key id").fill(stack["api_key_id"])
    page.get_by_label("API secret").fill("not-the-secret")
    page.get_by_role("button", name="Sign in").click()

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "Sign-in failed: the key id or the secret is wrong. The API said: “Invalid secret.”"
    )
    expect(alert).to_be_focused()
    assert page.evaluate("() => sessionStorage.length") == 0
    # an unknown key id too, in its own words
    page.get_by_label("API key id").fill("no-such-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Access key not found")


def test_a_reload_keeps_the_tab_signed_in(page, stack):
    sign_in(page, stack)
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="Customers")).to_be_visible()


def test_find_a_customer_by_id_shows_its_ids_and_properties_with_their_last_update(page, stack):
    three_hours_ago = int(time.time()) - 3 * 3600
    track(
        stack,
        {"registered": "console-find", "cookie": "console-find-cookie"},
        {"first_name": "Ada", "visits": 3, "tags": ["a", "b"]},
        three_hours_ago,
    )
    sign_in(page, stack)

    find(page, "registered", "console-find")

    heading = page.locator("#customer-title")
    expect(heading).to_have_text("Customer with registered “console-find”")
    expect(heading).to_be_focused()
    expect(page.locator("dl.facts")).to_contain_text("console-find-cookie")
    first_name = row(page, "first_name")
    expect(first_name.locator("td").first).to_have_text("Ada")
    expect(first_name.locator("time")).to_have_text(local_date_time(three_hours_ago))
    expect(first_name.locator(".ago")).to_have_text("3 hours ago")
    expect(row(page, "tags").locator("td").first).to_have_text('["a", "b"]')
    expect(page.get_by_text(f"your browser's time zone ({TIMEZONE})")).to_be_visible()


def facts(page) -> dict[str, str]:
    """The customer's facts as the page lists them: term -> description."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => Object.fromEntries([...document.querySelectorAll("dl.facts dt")].map(
             (term) => [term.textContent, term.nextElementSibling.textContent]))"""
    )


def test_a_customer_found_by_its_internal_id_shows_its_ids(page, stack):
    ids = {"registered": "console-internal", "cookie": "console-internal-cookie"}
    answer = track(stack, ids, {"first_name": "Iva"}, int(time.time()) - 60)
    sign_in(page, stack)

    find(page, "__internal__", answer["customer_id"])

    expect(page.locator("dl.facts")).to_contain_text("console-internal-cookie")
    assert facts(page) == {"Internal id": answer["customer_id"], **ids}
    expect(row(page, "first_name").locator("td").first).to_have_text("Iva")


@pytest.mark.parametrize("by", ["registered", "cookie", "__internal__"])
def test_finding_a_customer_is_one_read_with_its_ids_and_timestamps(page, stack, by):
    """However the customer is looked for, the page asks the API once:
    GET /api/customers/{id}?include_timestamps=1&include_ids=1 (no
    export-one beside it)."""
    ids = {"registered": f"console-one-read-{by}", "cookie": f"console-one-read-{by}-cookie"}
    answer = track(stack, ids, {"first_name": "Ota"}, int(time.time()) - 60)
    sign_in(page, stack)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(f"{request.method} {request.url}"))

    find(page, by, answer["customer_id"] if by == "__internal__" else ids[by])
    expect(page.locator("dl.facts")).to_contain_text(ids["registered"])

    [read] = asked
    method, url = read.split(" ", 1)
    query = parse_qs(urlsplit(url).query)
    assert method == "GET"
    assert urlsplit(url).path.startswith("/api/customers/")
    assert query["include_timestamps"] == ["1"]
    assert query["include_ids"] == ["1"]
    # the internal id too, however the customer was found
    assert facts(page) == {"Internal id": answer["customer_id"], **ids}
    expect(page.get_by_role("heading", name="Ids", exact=True)).to_have_count(1)


def test_find_a_customer_by_internal_id(page, stack):
    sign_in(page, stack)

    find(page, "__internal__", SAMPLE_CUSTOMER_ID)

    expect(page.locator("dl.facts")).to_contain_text(SAMPLE_CUSTOMER_ID)
    expect(row(page, "first_name").locator("td").first).to_have_text(
        SAMPLE_CUSTOMER_PROPERTIES["first_name"]
    )


def test_a_property_stored_before_synchronization_is_never_timestamped(page, stack):
    answer = track(stack, {"registered": "console-legacy"}, {"first_name": "Old"}, 1570000000)
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack["aws_endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    dynamodb.update_item(  # a value with no update time, as before synchronization
        TableName=stack["table_name"],
        Key={"pk": {"S": customer_key(stack["project_token"], answer["customer_id"])}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "p:last_name"},
        ExpressionAttributeValues={":v": {"M": {"v": {"S": '"Legacy"'}}}},
    )
    sign_in(page, stack)

    find(page, "registered", "console-legacy")

    expect(row(page, "last_name").locator("td").nth(1)).to_have_text("never timestamped")


def test_an_unknown_customer_is_said_in_words(page, stack):
    sign_in(page, stack)
    page.get_by_label("Id value").fill("nobody-has-this-id")
    page.get_by_role("button", name="Find").click()

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "No customer of this project has the registered “nobody-has-this-id”."
    )
    expect(alert).to_be_focused()


def test_edit_a_property_and_see_its_new_last_update(page, stack):
    three_hours_ago = int(time.time()) - 3 * 3600
    track(
        stack,
        {"registered": "console-edit"},
        {"first_name": "Ann", "email": "ann@old.example", "tier": "silver", "score": 7},
        three_hours_ago,
    )
    sign_in(page, stack)
    find(page, "registered", "console-edit")
    email = row(page, "email")
    expect(email.locator(".ago")).to_have_text("3 hours ago")

    before = time.time()
    email.get_by_role("button", name="Edit email").click()
    expect(page.get_by_label("New value of email")).to_be_focused()
    page.get_by_label("New value of email").fill("ann@new.example")
    page.get_by_role("button", name="Save").click()

    note = email.get_by_role("status")
    expect(note).to_contain_text("Saved. Stamped by the server:")
    expect(note).to_be_focused()
    expect(email.locator("td").first).to_contain_text("ann@new.example")
    expect(email.locator(".ago")).to_have_text("now")
    stored = customer_with_ids(stack, "console-edit")["email"]
    assert stored["value"] == "ann@new.example"
    assert before - 1 <= stored["last_update"] <= time.time() + 1
    expect(email.locator("time")).to_have_text(local_date_time(stored["last_update"]))
    assert customer_with_ids(stack, "console-edit")["tier"]["last_update"] == three_hours_ago


def test_an_edit_that_loses_to_a_newer_value_says_so_on_its_row(page, stack):
    """A source whose clock is ahead wrote the property "later" than the
    edit arrives: the edit is stale, and the row says which value won."""
    track(stack, {"registered": "console-stale"}, {"tier": "silver"}, int(time.time()) - 60)
    sign_in(page, stack)
    find(page, "registered", "console-stale")
    ahead = int(time.time()) + 1800
    track(stack, {"registered": "console-stale"}, {"tier": "platinum"}, ahead)

    tier = row(page, "tier")
    tier.get_by_role("button", name="Edit tier").click()
    page.get_by_label("New value of tier").fill("gold")
    page.get_by_role("button", name="Save").click()

    note = tier.get_by_role("status")
    expect(note).to_contain_text("Not saved: a newer value won.")
    expect(note).to_contain_text(f"The customer keeps platinum, updated {local_date_time(ahead)}")
    expect(note).to_be_focused()
    expect(tier.locator(".ago")).to_have_text("in 30 minutes")
    assert customer_with_ids(stack, "console-stale")["tier"] == {
        "value": "platinum",
        "last_update": ahead,
    }


def test_add_and_delete_a_property(page, stack):
    track(stack, {"registered": "console-add"}, {"first_name": "Eva"}, int(time.time()) - 60)
    sign_in(page, stack)
    find(page, "registered", "console-add")

    page.get_by_label("Property name").fill("loyalty_tier")
    page.get_by_label("Value", exact=True).fill("gold")
    page.get_by_role("button", name="Add property").click()
    added = row(page, "loyalty_tier")
    expect(added.get_by_role("status")).to_contain_text("Added.")
    # a number is sent and shown digit for digit, as the API stores it
    page.get_by_label("Property name").fill("score")
    page.get_by_label("Type", exact=True).select_option("number")
    page.get_by_label("Value", exact=True).fill("0.1000000000000000055511151231257827")
    page.get_by_role("button", name="Add property").click()
    expect(row(page, "score").locator("td").first).to_contain_text(
        "0.1000000000000000055511151231257827"
    )
    stored = customer_with_ids(stack, "console-add")
    assert stored["loyalty_tier"]["value"] == "gold"

    added.get_by_role("button", name="Delete loyalty_tier").click()
    page.get_by_role("button", name="Delete loyalty_tier").click()  # the confirmation
    expect(page.get_by_role("status").filter(has_text="Deleted loyalty_tier.")).to_be_focused()
    expect(row(page, "loyalty_tier")).to_have_count(0)
    assert "loyalty_tier" not in customer_with_ids(stack, "console-add")


def test_a_value_that_is_not_of_its_type_is_refused_before_sending(page, stack):
    track(stack, {"registered": "console-typed"}, {"visits": 1}, int(time.time()) - 60)
    sign_in(page, stack)
    find(page, "registered", "console-typed")

    row(page, "visits").get_by_role("button", name="Edit visits").click()
    page.get_by_label("New value of visits").fill("many")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("alert")).to_have_text(
        "“many” is not a number: write digits, e.g. 42, -7 or 3.25."
    )
    expect(page.get_by_label("New value of visits")).to_be_focused()
    page.keyboard.press("Escape")
    expect(row(page, "visits").get_by_role("button", name="Edit visits")).to_be_focused()


def test_a_refused_edit_shows_the_apis_sentence_on_its_row(page, stack):
    track(stack, {"registered": "console-refused"}, {"note": "x"}, int(time.time()) - 60)
    sign_in(page, stack)
    find(page, "registered", "console-refused")

    row(page, "note").get_by_role("button", name="Edit note").click()
    page.get_by_label("Type of note").select_option("json")
    page.get_by_label("New value of note").fill("[" * 70 + "]" * 70)  # deeper than allowed
    page.get_by_role("button", name="Save").click()

    alert = row(page, "note").get_by_role("alert")
    expect(alert).to_contain_text("note was not saved.")
    expect(alert).to_contain_text("64")  # the API's sentence names the limit
    expect(alert).to_be_focused()


def test_a_key_without_the_set_permission_sees_no_edit_controls(page, stack):
    track(stack, {"registered": "console-read-only"}, {"first_name": "Rita"}, 1570000000)
    key = create_key(stack, "customer_properties:get")
    sign_in(page, stack, key)

    find(page, "registered", "console-read-only")

    expect(row(page, "first_name")).to_be_visible()
    expect(page.get_by_role("button", name="Edit first_name")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete first_name")).to_have_count(0)
    expect(page.get_by_role("button", name="Add property")).to_have_count(0)
    expect(page.get_by_text("This key can read but not edit customers")).to_be_visible()
    expect(page.get_by_role("link", name="Imports", exact=True)).to_be_hidden()


def test_a_key_without_the_import_permission_sees_no_imports(page, stack):
    key = create_key(stack, "customer_properties:get", "customer_properties:set")
    sign_in(page, stack, key)

    expect(page.get_by_role("link", name="Imports", exact=True)).to_be_hidden()
    page.goto(f"{stack['api']}/console#/imports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Imports: not for this key")
    expect(page.get_by_role("button", name="Start the import")).to_have_count(0)


def test_a_key_that_may_only_import_goes_to_the_imports(page, stack):
    key = create_key(stack, "customers:import")
    sign_in(page, stack, key)

    expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
    expect(page.get_by_role("link", name="Customers")).to_be_hidden()


def test_a_network_failure_is_said_in_words(page, stack):
    sign_in(page, stack)
    page.route("**/api/customers/**", lambda route: route.abort("connectionrefused"))
    page.get_by_label("Id value").fill("anyone")
    page.get_by_role("button", name="Find").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "The console could not reach the API: the network request failed."
    )


# ---------------------------------------------------------------- ids as typed

ID_VALUES = st.text(
    # any id the id rules allow (no control characters), a few characters long
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
    min_size=1,
    max_size=12,
) | st.sampled_from(
    [".", "..", "...", " spaced ", " ", "a/b", "50%", "?x=1#y", "%2E%2E", "./..", "\\.."]
)


def look_up(page, id_type: str, value: str) -> None:
    page.get_by_label("Find by").select_option(id_type)
    page.get_by_label("Id value").fill(value)
    page.get_by_role("button", name="Find").click()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=ID_VALUES)
@example(value=".")
@example(value="..")
@example(value=" spaced ")
@example(value="a/b")
def test_a_customer_is_found_and_edited_by_its_id_exactly_as_typed(page, stack, value):
    """Whatever an id is (spaces around it, "/", "%", "?"), the page asks
    for that value and no other, and an edit lands on that customer; "."
    and "..", which a browser cannot send in an address, are said in words
    (never "no customer has it", never another route's answer)."""
    marker = f"m{time.time_ns()}"
    # now: newer than an earlier example's edit of the same id
    track(stack, {"registered": value}, {"marker": marker}, time.time())
    if not page.url.startswith(stack["api"]):
        sign_in(page, stack)

    look_up(page, "registered", value)

    if value in {".", ".."}:
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text(f"A browser cannot send “{value}” as a part of an address")
        expect(alert).to_be_focused()
        return
    expect(page.locator("#customer-title")).to_be_focused()
    expect(row(page, "marker").locator("td").first).to_have_text(marker)
    row(page, "marker").get_by_role("button", name="Edit marker").click()
    page.get_by_label("New value of marker").fill(f"{marker}-edited")
    page.get_by_role("button", name="Save").click()
    expect(row(page, "marker").get_by_role("status")).to_contain_text("Saved.")
    status, answer = api_call(
        stack,
        "GET",
        f"/api/customers/{quote(value, safe='')}?id_type=registered",
        authorization=basic(stack["api_key_id"], stack["api_secret"]),
    )
    assert status == 200, answer
    assert answer["properties"]["marker"] == f"{marker}-edited"


# ---------------------------------------------------------------- long values

# How many lines an element's text takes, and where it is: measured in the page.
LAYOUT = """(element) => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
  const box = element.getBoundingClientRect();
  return {lines: tops.size, top: Math.round(box.top), height: box.height, width: box.width};
}"""


def layout(locator) -> dict[str, Any]:
    return locator.evaluate(LAYOUT)  # type: ignore[no-any-return]


def test_long_values_wrap_in_their_cell_and_the_actions_keep_their_width(page, stack):
    """A 15 KB value, a 3000-character word and a name longer than its
    column, at 1280 px: Edit and Delete stay side by side on one line each,
    an ordinary name stays whole, the long name breaks inside its column,
    the long values are shown clipped with a way to see them whole."""
    long_name = "a_property_name_without_any_space_" * 7  # 238 bytes, one word
    track(
        stack,
        {"registered": "console-long"},
        {
            "first_name": "FromTheFuture",
            "essay": ("lorem ipsum dolor sit amet " * 600)[:15000],
            "word": "x" * 3000,
            long_name: "short",
        },
        int(time.time()) - 60,
    )
    sign_in(page, stack)

    find(page, "registered", "console-long")

    for name in ["first_name", "essay", "word", long_name]:
        edit = layout(row(page, name).get_by_role("button", name=f"Edit {name}"))
        delete = layout(row(page, name).get_by_role("button", name=f"Delete {name}"))
        assert edit["lines"] == delete["lines"] == 1, name
        assert edit["top"] == delete["top"], name  # side by side
    assert layout(row(page, "first_name").locator("th .name"))["lines"] == 1
    assert layout(row(page, "first_name"))["height"] < 120
    long_name_cell = layout(row(page, long_name).locator("th"))
    assert layout(row(page, long_name).locator("th .name"))["lines"] > 1
    assert long_name_cell["width"] < 400
    assert page.evaluate("document.documentElement.scrollWidth") == 1280
    for name, length in [("essay", "15,000"), ("word", "3,000")]:
        value = row(page, name).locator("td").first
        assert len(value.inner_text()) < 1000  # clipped
        assert layout(row(page, name))["height"] < 400
        value.get_by_text(f"Show all {length} characters").click()
        expect(value).to_contain_text(customer_with_ids(stack, "console-long")[name]["value"])


# ---------------------------------------------------------------- invisible characters

# Every character the page writes out as ⟨U+XXXX⟩ in a stored string: control
# and format characters (bidi overrides, isolates, marks, zero-width spaces,
# the BOM, soft hyphens, tags) and the line/paragraph separators.
INVISIBLE = [
    chr(code)
    for code in range(0x110000)
    if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"}
]


def test_invisible_and_bidi_characters_are_shown_and_stored_strings_isolated(page, stack):
    """rtl_<U+202E>evil would read "rtl_live": names, ids and values show
    each invisible character as ⟨U+XXXX⟩, in elements isolated from the
    text around them (their own direction: they cannot reorder the page)."""
    name = "rtl_\u202eevil"
    track(
        stack,
        {"registered": "console-bidi\u2066x", "cookie": "cookie\u200b\u202e"},
        {name: "a\u202eb\u200fc\ufeff", "plain": "שלום mixed"},
        int(time.time()) - 60,
    )
    sign_in(page, stack)

    find(page, "registered", "console-bidi\u2066x")

    expect(page.locator("#customer-title")).to_have_text(
        "Customer with registered “console-bidi⟨U+2066⟩x”"
    )
    assert facts(page)["cookie"] == "cookie⟨U+200B⟩⟨U+202E⟩"
    assert facts(page)["registered"] == "console-bidi⟨U+2066⟩x"
    bidi = row(page, name)
    expect(bidi.locator("th")).to_have_text("rtl_⟨U+202E⟩evil")
    expect(bidi.locator("td").first).to_have_text("a⟨U+202E⟩b⟨U+200F⟩c⟨U+FEFF⟩")
    expect(bidi.get_by_role("button", name="Edit rtl_⟨U+202E⟩evil")).to_be_visible()
    expect(row(page, "plain").locator("td").first).to_have_text("שלום mixed")
    isolated = page.evaluate(
        """() => [...document.querySelectorAll(
                   "#customer-title .stored, dl.facts .stored, table.properties .stored")]
                 .map((e) => [getComputedStyle(e).unicodeBidi, e.dir])"""
    )
    assert len(isolated) >= 6
    assert set(map(tuple, isolated)) == {("isolate", "auto")}

    # the class: the one helper every page uses writes out each such character
    # (but a joiner inside an emoji), and leaves other text as it is
    shown = page.evaluate(
        """async (chars) => {
             const { visibleText } = await import("./console/format.js");
             return chars.map((c) => visibleText(`a${c}b`));
           }""",
        INVISIBLE,
    )
    assert shown == [f"a⟨U+{ord(c):04X}⟩b" for c in INVISIBLE]
    as_is = [
        "שלום mixed",
        "مرحبا",
        "👨\u200d👩\u200d👧",
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "Zalgo̸",
    ]
    assert (
        page.evaluate(
            """async (texts) => {
             const { visibleText } = await import("./console/format.js");
             return texts.map((t) => visibleText(t));
           }""",
            as_is,
        )
        == as_is
    )


def test_a_refused_add_or_edit_keeps_what_was_typed_beside_the_apis_sentence(page, stack):
    track(stack, {"registered": "console-keep"}, {"note": "x"}, int(time.time()) - 60)
    sign_in(page, stack)
    find(page, "registered", "console-keep")

    too_long = "n" * 300  # over the API's 256 bytes for a name
    page.get_by_label("Property name").fill(too_long)
    page.get_by_label("Type", exact=True).select_option("number")
    page.get_by_label("Value", exact=True).fill("42")
    page.get_by_role("button", name="Add property").click()

    add = page.get_by_role("form", name="Add a property")
    expect(add.get_by_role("alert")).to_contain_text("was not saved.")
    expect(add.get_by_role("alert")).to_contain_text("256")
    expect(add.get_by_role("alert")).to_be_focused()
    expect(page.get_by_label("Property name")).to_have_value(too_long)
    expect(page.get_by_label("Type", exact=True)).to_have_value("number")
    expect(page.get_by_label("Value", exact=True)).to_have_value("42")
    expect(add.get_by_role("button", name="Add property")).to_be_enabled()

    row(page, "note").get_by_role("button", name="Edit note").click()
    page.get_by_label("Type of note").select_option("json")
    deep = "[" * 70 + "]" * 70  # deeper than the API allows
    page.get_by_label("New value of note").fill(deep)
    page.get_by_role("button", name="Save").click()

    edit = row(page, "note").get_by_role("form", name="Edit note")
    expect(edit.get_by_role("alert")).to_contain_text("note was not saved.")
    expect(page.get_by_label("New value of note")).to_have_value(deep)
    expect(page.get_by_label("Type of note")).to_have_value("json")
    expect(edit.get_by_role("button", name="Save")).to_be_enabled()
    assert customer_with_ids(stack, "console-keep")["note"]["value"] == "x"


def test_a_customer_without_external_ids_says_so_once(page, stack):
    """Found by its internal id, a customer whose ids are all gone (erased)
    shows its internal id under one "Ids" heading and says it has no other."""
    answer = track(stack, {"cookie": "console-no-ids"}, {"first_name": "Nia"}, time.time() - 60)
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack["aws_endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    key = {"pk": {"S": customer_key(stack["project_token"], answer["customer_id"])}}
    item = dynamodb.get_item(TableName=stack["table_name"], Key=key)["Item"]
    id_attributes = [name for name in item if name.startswith(ID_SET_PREFIX)]
    assert id_attributes, sorted(item)
    dynamodb.update_item(
        TableName=stack["table_name"],
        Key=key,
        UpdateExpression="REMOVE " + ", ".join(f"#a{i}" for i in range(len(id_attributes))),
        ExpressionAttributeNames={f"#a{i}": name for i, name in enumerate(id_attributes)},
    )
    sign_in(page, stack)

    find(page, "__internal__", answer["customer_id"])

    assert facts(page) == {"Internal id": answer["customer_id"]}
    expect(page.get_by_text("This customer has no external ids.")).to_be_visible()
    expect(page.get_by_text("Ids", exact=True)).to_have_count(1)


@pytest.mark.parametrize(
    ("permissions", "said"),
    [
        (
            ["customer_properties:set"],
            "may edit customers (customer_properties:set) but not read them: the console "
            "shows customers only to keys with customer_properties:get",
        ),
        (["customers:anonymize"], "has none of the permissions the console uses"),
    ],
)
def test_a_key_the_console_can_show_nothing_to_is_told_what_is_true(page, stack, permissions, said):
    key = create_key(stack, *permissions)
    sign_in(page, stack, key)

    expect(page.get_by_role("heading", level=1)).to_have_text("Nothing this key can do here")
    expect(page.locator("main")).to_contain_text(f"Key {key['api_key_id']} {said}")
    if permissions == ["customer_properties:set"]:
        expect(page.locator("main")).not_to_contain_text("has none of the permissions")


@pytest.mark.parametrize(
    "hash_", ["#/imports/%E0%A4%A", "#/customers/%", "#/%ZZ", "#/imports/%C0%AF"]
)
def test_a_malformed_address_says_there_is_no_such_page(page, stack, hash_):
    sign_in(page, stack)
    page.goto(f"{stack['api']}/console{hash_}")

    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("No such page")
    expect(heading).to_be_focused()
    expect(page.locator("main")).to_contain_text(f"The address “{hash_}” names no page")
    page.get_by_role("link", name="Go to the console's start page").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
