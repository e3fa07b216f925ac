"""Taiwan's unified business number (統一編號): eight digits and a weighted check.

The Ministry of Finance's rule: multiply the digits by 1, 2, 1, 2, 1, 2, 4, 1, add the digits of each
product, and the sum must be divisible by 5 (by 10 before April 2023, when numbers began to run out;
every number valid under the old rule is valid under the new one). When the seventh digit is 7 its
product 28 counts as either 10 -> 1 or 10 -> 0, so the sum plus one may be divisible instead.
"""

from __future__ import annotations

import re

_FORMAT = re.compile(r"^[0-9]{8}$")
_WEIGHTS = (1, 2, 1, 2, 1, 2, 4, 1)
_DIVISOR = 5


def normalize(number: str) -> str:
    """Return the number without surrounding spaces."""
    return number.strip()


def is_valid(number: str) -> bool:
    """Tell whether *number* is eight digits whose check holds."""
    if not _FORMAT.match(number):
        return False
    total = 0
    for digit, weight in zip(number, _WEIGHTS, strict=True):
        product = int(digit) * weight
        total += product // 10 + product % 10
    if total % _DIVISOR == 0:
        return True
    return number[6] == "7" and (total + 1) % _DIVISOR == 0
