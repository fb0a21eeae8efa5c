"""PROPSYNC_IMPORT_CHUNK_BYTES: the stack parameter ImportChunkBytes on AWS,
the environment of `make run` locally; a value that is not a size is refused
with a message naming the variable and what is allowed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propsync import imports
from propsync_local.cfn_template import load_template

TEMPLATE = load_template()


def test_the_chunk_size_is_a_stack_parameter_the_import_function_gets():
    parameter = TEMPLATE["Parameters"]["ImportChunkBytes"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == imports.DEFAULT_CHUNK_BYTES
    assert int(parameter["MaxValue"]) == imports.MAX_CHUNK_BYTES
    assert 1 <= int(parameter["MinValue"]) <= imports.DEFAULT_CHUNK_BYTES
    assert imports.CHUNK_BYTES_ENV in parameter["Description"]
    variables = TEMPLATE["Resources"]["ImportFunction"]["Properties"]["Environment"]["Variables"]
    assert variables[imports.CHUNK_BYTES_ENV] == {"Ref": "ImportChunkBytes"}


@given(st.integers(1, imports.MAX_CHUNK_BYTES))
def test_a_whole_number_of_bytes_in_range_is_the_chunk_size(size):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(imports.CHUNK_BYTES_ENV, f" {size} ")
        assert imports.chunk_bytes() == size


def test_unset_or_empty_is_the_default(monkeypatch):
    monkeypatch.delenv(imports.CHUNK_BYTES_ENV, raising=False)
    assert imports.chunk_bytes() == imports.DEFAULT_CHUNK_BYTES
    monkeypatch.setenv(imports.CHUNK_BYTES_ENV, "")
    assert imports.chunk_bytes() == imports.DEFAULT_CHUNK_BYTES


def _not_digits(text: str) -> bool:
    return "\0" not in text and text.strip() != "" and not text.strip().isdecimal()


NOT_A_SIZE = st.one_of(
    st.text().filter(_not_digits),
    st.integers(max_value=0).map(str),
    st.integers(min_value=imports.MAX_CHUNK_BYTES + 1).map(str),
    st.sampled_from(["abc", "16MB", "1e6", "1.5", "0x10", "-1", "0", "\uff11\uff12"]),
)


@given(NOT_A_SIZE)
def test_anything_else_is_refused_naming_the_variable_and_the_range(value):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(imports.CHUNK_BYTES_ENV, value)
        with pytest.raises(ValueError, match=f"^{imports.CHUNK_BYTES_ENV}=") as refused:
            imports.chunk_bytes()
    assert f"from 1 to {imports.MAX_CHUNK_BYTES}" in str(refused.value)


def test_a_plan_with_too_many_chunks_names_the_stack_parameter_too():
    plan = {"mapping": {}, "header": [], "chunks": [[i, i + 1, i] for i in range(40_000)]}
    problem = imports._plan_size_problem(plan)
    assert problem is not None
    assert "ImportChunkBytes" in problem
    assert imports.CHUNK_BYTES_ENV in problem
