"""Taiwan national ID numbers (國民身分證統一編號): format, checksum and masking.

A number is one letter (the place of first registration) and nine digits. The letter maps to a
two-digit code; the two digits of that code and the nine digits are weighted 1, 9, 8, 7, 6, 5, 4, 3,
2, 1, 1 and the sum must be a multiple of ten. The first digit is 1 or 2 for citizens; 8 and 9 are
the uniform ID numbers of residents issued since 2021, which follow the same checksum.
"""

from __future__ import annotations

import re

# The letter codes are not alphabetical: I, O, W, X, Y, Z were added after the original 20 areas.
LETTER_CODES = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34, "J": 18,
    "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25, "S": 26, "T": 27,
    "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip
WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
_SHAPE = re.compile(r"[A-Z][1289][0-9]{8}")


def normalize(value: str) -> str:
    """Return *value* without surrounding spaces and with the letter in capitals."""
    return value.strip().upper()


def checksum_ok(national_id: str) -> bool:
    """Tell whether *national_id* (already normalized) has the right shape and checksum."""
    if not _SHAPE.fullmatch(national_id):
        return False
    code = LETTER_CODES[national_id[0]]
    digits = [code // 10, code % 10, *(int(c) for c in national_id[1:])]
    return sum(d * w for d, w in zip(digits, WEIGHTS, strict=True)) % 10 == 0


def is_valid(value: str) -> bool:
    """Tell whether *value* is a valid national ID number (letter case and spaces forgiven)."""
    return checksum_ok(normalize(value))


def mask(national_id: str) -> str:
    """Return the number masked for display to anyone but its owner: ``A12****789``."""
    return national_id[:3] + "****" + national_id[-3:]
