"""The platform's canonical JSON gives exactly the bytes of the RFC 8785 reference, or its refusal."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from mydata import canonical_json

TRICKY_STRINGS = [
    "",
    "plain ascii",
    "".join(chr(c) for c in range(0x20)),  # every control character: short forms and \u00xx
    '"quoted" \\ back\\slash / solidus',
    "\x7f delete is not escaped",
    "café naïve Ωμέγα",
    "戶籍資料 使用紀錄 透明紀錄",
    "emoji 😀 and 👩‍👩‍👧 family",
    "line\u2028and\u2029paragraph separators",
    "\ufeff byte order mark, \ue000 private use, \uffff last BMP",
    "\U0010ffff the last code point",
]

RFC_8785_SORTING = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\U0001f600": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}
"""RFC 8785 §3.2.3's example: names sorted by UTF-16 code units, not code points."""

KNOWN_ANSWERS: list[tuple[Any, bytes]] = [
    # RFC 8785 §3.2.2.2 escapes.
    ({"a": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"}, b'{"a":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'),
    (
        RFC_8785_SORTING,
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'.encode(),
    ),
    (
        {"b": [1, True, None, {"z": -(2**53 - 1), "a": 2**53 - 1}], "a": []},
        b'{"a":[],"b":[1,true,null,{"a":9007199254740991,"z":-9007199254740991}]}',
    ),
    ({"numbers": [0, -0.0, 1.0, 1e21, 0.1, 333333333.3333333]}, b'{"numbers":[0,0,1,1e+21,0.1,333333333.3333333]}'),
    ("\u2028", '"\u2028"'.encode()),
]

# JSON documents as the platform builds them: every type the fast path takes, and floats and big
# integers, which it must hand to the reference.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(TRICKY_STRINGS),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.sampled_from(TRICKY_STRINGS), children, max_size=4)
    ),
    max_leaves=20,
)


def reference(value: Any) -> bytes | type[Exception]:
    """Return the reference's bytes, or the class of its refusal."""
    try:
        return rfc8785.dumps(value)
    except ValueError as exc:  # CanonicalizationError; UnicodeEncodeError for a lone surrogate in a name
        return type(exc)


def ours(value: Any) -> bytes | type[Exception]:
    """Return our bytes, or the class of our refusal."""
    try:
        return canonical_json.dumps(value)
    except ValueError as exc:  # CanonicalizationError; UnicodeEncodeError for a lone surrogate in a name
        return type(exc)


@pytest.mark.parametrize(("value", "expected"), KNOWN_ANSWERS)
def test_known_answers(value: Any, expected: bytes) -> None:
    assert canonical_json.dumps(value) == expected == rfc8785.dumps(value)


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_tricky_strings_as_values_and_names(text: str) -> None:
    value = {text: text, "z" + text: [text], "a": {text: None}}
    assert canonical_json.dumps(value) == rfc8785.dumps(value)


def test_names_above_u_ffff_sort_by_utf_16_code_units() -> None:
    # Code points put U+FFFF first; UTF-16 puts U+1F600 (0xD83D 0xDE00) first.
    value = {"\uffff": 1, "\U0001f600": 2, "\ue000": 3, "a": 4}
    assert canonical_json.dumps(value) == rfc8785.dumps(value)
    assert canonical_json.dumps(value).index("\U0001f600".encode()) < canonical_json.dumps(value).index(b"\xef\xbf\xbf")


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        10**30,
        {"a": [2**53]},
        "lone \ud800 surrogate",
        {"\udfff": 1},
        {1: "a"},
        {None: 1},
        float("nan"),
    ],
)
def test_refuses_what_the_reference_refuses(value: Any) -> None:
    assert isinstance(reference(value), type)
    assert ours(value) is reference(value)


def test_subclasses_are_serialised_as_the_reference_does() -> None:
    import enum

    class Colour(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    value = {"colour": Colour.RED, "level": Level.HIGH, "tuple": (1, "two")}
    assert canonical_json.dumps(value) == rfc8785.dumps(value) == b'{"colour":"red","level":3,"tuple":[1,"two"]}'


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_same_bytes_or_refusal_as_the_reference(value: Any) -> None:
    assert ours(value) == reference(value)
