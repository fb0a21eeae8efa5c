"""http_json.payload_size counts an answer as Lambda's 6 MB response limit
counts it: the proxy integration's envelope serialized, the body a JSON string
inside it. It must never count less than that (an answer it passes would be
API Gateway's 502), and only the envelope's few keys more."""

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from propsync.api import Response
from propsync.http_json import payload_size

# text of every width: ASCII, quotes and backslashes, control characters,
# 2- to 4-byte characters (astral ones are two \u escapes in ASCII JSON)
texts = st.text(
    st.characters(codec="utf-8") | st.sampled_from(['"', "\\", "\n", "\x00", "€", "😀"]),
    max_size=40,
)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False).map(Decimal)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=30,
)


@given(body=st.dictionaries(texts, values, max_size=4))
def test_the_size_is_at_least_lambdas_and_at_most_the_envelope_more(body):
    envelope = len(json.dumps(Response(200, body).proxy_result()))
    assert envelope <= payload_size(body) <= envelope + 256
