"""A project's id types (no I/O): which are known, which are hard, the one
sentence an unknown id type is refused with, the stored form, and adding."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from propsync.errors import (
    IdTypeKindError,
    InvalidCustomerIdsError,
    InvalidInputError,
    UnknownIdTypeError,
    UnknownProjectError,
    shown,
)
from propsync.id_types import (
    DEFAULT_ID_TYPES,
    HARD,
    SOFT,
    IdTypes,
    check_id_type_name,
)
from propsync.identity import validate_customer_ids
from propsync.limits import MAX_ID_TYPE_CHARS

NAMES = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
    min_size=1,
    max_size=MAX_ID_TYPE_CHARS,
)


@st.composite
def id_types(draw) -> IdTypes:
    names = draw(st.sets(NAMES, max_size=8))
    hard = draw(st.sets(st.sampled_from(sorted(names)))) if names else set()
    return IdTypes(hard=frozenset(hard), soft=frozenset(names - hard))


def test_the_defaults_are_registered_hard_and_cookie_soft():
    assert DEFAULT_ID_TYPES.known == ("cookie", "registered")
    assert DEFAULT_ID_TYPES.is_hard("registered")
    assert not DEFAULT_ID_TYPES.is_hard("cookie")
    assert DEFAULT_ID_TYPES.to_item() == {"cookie": SOFT, "registered": HARD}
    DEFAULT_ID_TYPES.check({"registered": "jane", "cookie": "c1"})


def test_a_typo_of_an_id_type_is_refused_naming_it_and_every_known_id_type():
    with pytest.raises(UnknownIdTypeError) as raised:
        DEFAULT_ID_TYPES.check({"registred": "jane"})
    assert str(raised.value) == (
        "id type 'registred' is not known to this project; known id types: cookie (soft), "
        "registered (hard); an administrator adds id types with "
        "`propsync set-id-type`"
    )
    # answered by the API as every other bad customer_ids (400)
    assert isinstance(raised.value, InvalidCustomerIdsError)


def test_several_unknown_id_types_are_named_together():
    with pytest.raises(UnknownIdTypeError, match=r"^id types 'a', 'b' are not known"):
        DEFAULT_ID_TYPES.check({"b": "1", "registered": "x", "a": "2"})


def test_an_error_names_at_most_20_id_types_however_many_there_are():
    many = {f"t{i:04}": "x" for i in range(5000)}
    project = IdTypes(hard=frozenset(), soft=frozenset(f"k{i:04}" for i in range(5000)))
    with pytest.raises(UnknownIdTypeError) as raised:
        project.check(many)
    message = str(raised.value)
    assert "'t0019' and 4980 more are not known" in message
    assert "k0019 (soft) and 4980 more;" in message
    assert len(message) < 1000


@given(id_types(), st.dictionaries(NAMES, st.just("v"), min_size=1, max_size=5))
def test_check_refuses_exactly_the_ids_whose_type_the_project_does_not_know(project, ids):
    unknown = sorted(set(ids) - set(project.known))
    if not unknown:
        project.check(ids)
        assert project.unknown_problem(ids) is None
        return
    with pytest.raises(UnknownIdTypeError) as raised:
        project.check(ids)
    message = str(raised.value)
    assert message == project.unknown_problem(ids)
    for name in unknown[:20]:  # at most 20 are named, each as errors.shown quotes it
        assert shown(name) in message
    for name in project.known:
        assert f"{name} ({project.kind(name)})" in message


@given(id_types())
def test_every_id_type_is_either_hard_or_soft_and_the_stored_form_reads_back(project):
    for name in project.known:
        assert project.kind(name) == (HARD if project.is_hard(name) else SOFT)
    assert list(project.known) == sorted(project.known)
    assert IdTypes.from_item(project.to_item()) == project


@given(id_types(), NAMES, st.booleans())
def test_adding_a_new_id_type_keeps_every_other_one_as_it_was(project, name, hard):
    assume(name not in project.known)
    added = project.adding(name, hard=hard)
    assert added.kind(name) == (HARD if hard else SOFT)
    assert added.to_item() == {**project.to_item(), name: added.kind(name)}


@given(id_types())
def test_adding_an_id_type_again_with_its_kind_changes_nothing(project):
    for name in project.known:
        assert project.adding(name, hard=project.is_hard(name)) is project


@given(id_types())
def test_the_kind_of_an_id_type_never_changes(project):
    for name in project.known:
        kind = project.kind(name)
        with pytest.raises(IdTypeKindError, match=f"is already {kind}; the kind of an id type"):
            project.adding(name, hard=not project.is_hard(name))


def test_a_soft_id_type_cannot_become_hard_because_customers_may_hold_several_values():
    with pytest.raises(IdTypeKindError) as raised:
        DEFAULT_ID_TYPES.adding("cookie", hard=True)
    assert "customers may already hold several values of it" in str(raised.value)
    assert isinstance(raised.value, InvalidInputError)


@given(st.one_of(st.text(max_size=70), st.integers(), st.none()))
def test_id_type_names_follow_the_customer_ids_rule(name):
    """One rule: what customer_ids refuses as an id type, no project can know."""
    try:
        validate_customer_ids({name: "v"})
        allowed = True
    except InvalidCustomerIdsError as error:
        allowed = "is not allowed" not in str(error)
        tracking_says = str(error)
    if allowed:
        assert check_id_type_name(name) == name
        return
    with pytest.raises(InvalidCustomerIdsError) as raised:
        check_id_type_name(name)
    assert str(raised.value) == tracking_says
    with pytest.raises(InvalidCustomerIdsError):
        IdTypes(hard=frozenset(), soft=frozenset({name}))
    with pytest.raises(InvalidCustomerIdsError):
        DEFAULT_ID_TYPES.adding(name, hard=False)


def test_an_id_type_cannot_be_both_hard_and_soft():
    with pytest.raises(ValueError, match="both hard and soft"):
        IdTypes(hard=frozenset({"x"}), soft=frozenset({"x"}))


def test_a_stored_kind_other_than_hard_or_soft_is_refused():
    with pytest.raises(ValueError, match="are not"):
        IdTypes.from_item({"x": "medium"})


def test_an_unknown_project_is_an_invalid_project_id():
    error = UnknownProjectError("x" * 1000)
    assert str(error).startswith("Invalid project id: no project 'xxx")
    assert len(str(error)) < 100
