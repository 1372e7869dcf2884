"""SSE event ids: every partition's position, encoded and parsed back, bad ids refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstream.web.sse import positions


@given(st.dictionaries(st.integers(0, 63), st.integers(0, positions.MAX_OFFSET), min_size=1))
def test_positions_encode_decode_roundtrip(at: dict[int, int]) -> None:
    assert positions.decode(positions.encode(at), 64) == at


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "0:1,0:2",
        "3:0",
        "0:-1",
        "-1:0",
        "0:1;1:2",
        "0:1,",
        " ",
        "0:9223372036854775808",
        "0:1" + ",1:1" * 2000,
    ],
)
def test_positions_bad_id_raises_valueerror(text: str) -> None:
    with pytest.raises(ValueError):
        positions.decode(text, 3)
