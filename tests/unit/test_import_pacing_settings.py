"""PROPSYNC_IMPORT_WRITES_PER_SECOND and PROPSYNC_IMPORT_CONCURRENCY: the
stack parameters ImportWritesPerSecond and ImportConcurrency on AWS, the
environment of `make run` locally. Each running chunk paces its writes to
their quotient; a value that is not a whole number in range is refused with
a message naming the variable and what is allowed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propsync import imports
from propsync_local import stack

SETTINGS = {
    imports.WRITES_PER_SECOND_ENV: (1, imports.MAX_WRITES_PER_SECOND),
    imports.CONCURRENCY_ENV: (1, imports.MAX_CONCURRENCY),
}


@given(
    ceiling=st.integers(1, imports.MAX_WRITES_PER_SECOND),
    concurrency=st.integers(1, imports.MAX_CONCURRENCY),
)
def test_a_chunks_share_is_the_ceiling_over_the_chunks_at_once(ceiling, concurrency):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(imports.WRITES_PER_SECOND_ENV, f" {ceiling} ")
        patch.setenv(imports.CONCURRENCY_ENV, str(concurrency))
        assert imports.chunk_write_share() == ceiling / concurrency


def test_unset_or_empty_are_the_stacks_defaults(monkeypatch):
    expected = imports.DEFAULT_WRITES_PER_SECOND / imports.DEFAULT_CONCURRENCY
    monkeypatch.delenv(imports.WRITES_PER_SECOND_ENV, raising=False)
    monkeypatch.delenv(imports.CONCURRENCY_ENV, raising=False)
    assert imports.chunk_write_share() == expected
    monkeypatch.setenv(imports.WRITES_PER_SECOND_ENV, "")
    monkeypatch.setenv(imports.CONCURRENCY_ENV, "")
    assert imports.chunk_write_share() == expected


def _not_digits(text: str) -> bool:
    return "\0" not in text and text.strip() != "" and not text.strip().isdecimal()


def not_in_range(high: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text().filter(_not_digits),
        st.integers(max_value=0).map(str),
        st.integers(min_value=high + 1).map(str),
        st.sampled_from(["abc", "2k", "1e3", "1.5", "0x10", "-1", "0", "\uff11\uff12"]),
    )


@pytest.mark.parametrize("name", sorted(SETTINGS))
@given(data=st.data())
def test_anything_else_is_refused_naming_the_variable_and_the_range(name, data):
    low, high = SETTINGS[name]
    value = data.draw(not_in_range(high))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(name, value)
        with pytest.raises(ValueError, match=f"^{name}=") as refused:
            imports.chunk_write_share()
    assert f"from {low} to {high}" in str(refused.value)


# every setting of imports that make run reads from its environment
@pytest.mark.parametrize("name", sorted({*SETTINGS, imports.CHUNK_BYTES_ENV}))
def test_make_run_refuses_a_setting_that_is_not_one_before_it_starts(name, monkeypatch, tmp_path):
    monkeypatch.setenv(name, "abc")
    monkeypatch.setattr(stack, "CREDENTIALS_PATH", tmp_path / "credentials.json")

    def bound(*_args):  # never start servers from a unit test, even when the check is missing
        pytest.fail("make run went on to bind its ports")

    monkeypatch.setattr(stack, "_bound", bound)
    with pytest.raises(SystemExit) as stopped:
        stack.main()
    assert str(stopped.value).startswith(f"{name}='abc'")
    assert not (tmp_path / "credentials.json").exists()
