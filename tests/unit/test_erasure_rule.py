"""The erasure rule (propsync.erasure.held_back) and the hashes an erasure
keeps, without I/O."""

from hypothesis import given
from hypothesis import strategies as st

from propsync.erasure import held_back, id_hash
from propsync.merge_rule import PropertyVersion

SALT = "00" * 32
OTHER_SALT = "11" * 32

times = st.floats(min_value=0, max_value=2e9, allow_nan=False)
id_pairs = st.sampled_from([("registered", "r1"), ("cookie", "c1"), ("cookie", "c2")])


@given(
    ids=st.dictionaries(
        st.sampled_from(["registered", "cookie"]), st.sampled_from(["r1", "c1"]), min_size=1
    ),
    versions=st.dictionaries(st.sampled_from("abcd"), st.one_of(st.none(), times), max_size=4),
    timestamp=times,
    erased=st.dictionaries(id_pairs, times, max_size=3),
)
def test_only_what_is_newer_than_every_erasure_of_its_ids_is_written(
    ids, versions, timestamp, erased
):
    properties = {name: PropertyVersion('"v"', t) for name, t in versions.items()}
    rule = held_back(ids, properties, timestamp, erased)
    times_of_its_ids = [erased[pair] for pair in ids.items() if pair in erased]
    if not times_of_its_ids:
        assert rule.versions == properties
        assert not rule.blocked
        assert rule.dropped == ()
        assert rule.erased_id_types == ()
        return
    latest = max(times_of_its_ids)
    assert rule.blocked == (timestamp <= latest)
    for name, version in rule.versions.items():
        assert version.timestamp is not None
        assert version.timestamp > latest
        assert properties[name] == version
    assert set(rule.versions) | set(rule.dropped) == set(properties)
    assert not set(rule.versions) & set(rule.dropped)
    if rule.blocked:
        assert rule.versions == {}
        assert set(rule.erased_id_types) == {
            t for (t, v), at in erased.items() if ids.get(t) == v and at >= timestamp
        }
        assert rule.erased_id_types


def test_an_update_of_ids_never_erased_is_untouched():
    versions = {"a": PropertyVersion('"x"', 5.0)}
    rule = held_back({"registered": "r1"}, versions, 5.0, {("registered", "other"): 9.0})
    assert rule.versions == versions
    assert not rule.blocked


@given(st.text(min_size=1), st.text(min_size=1))
def test_hashes_depend_on_the_salt_the_type_and_the_value(id_type, id_value):
    digest = id_hash(SALT, id_type, id_value)
    assert len(digest) == 64
    assert id_value not in digest or len(id_value) < 4
    assert digest != id_hash(OTHER_SALT, id_type, id_value)
    assert digest != id_hash(SALT, id_type + "x", id_value)
    assert digest != id_hash(SALT, id_type, id_value + "x")
    assert digest == id_hash(SALT, id_type, id_value)
