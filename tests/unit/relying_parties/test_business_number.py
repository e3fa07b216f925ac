"""The unified business number (統一編號) check."""

from __future__ import annotations

import pytest

from relying_parties.business_number import is_valid


@pytest.mark.parametrize("number", ["22099131", "04595257", "12345675", "90000001"])
def test_valid_numbers(number: str) -> None:
    assert is_valid(number)


@pytest.mark.parametrize("number", ["22099132", "12345678", "2209913", "220991310", "2209913a", " 22099131", ""])
def test_invalid_numbers(number: str) -> None:
    assert not is_valid(number)


def test_a_seventh_digit_7_may_count_its_28_as_one() -> None:
    # 1+4+3+8+5+(1+2)+(2+8)+5 = 39: not divisible by 5, but 40 is when 28 counts as 1 + 0 -> 1.
    assert is_valid("12345675")
    assert not is_valid("12345674")
