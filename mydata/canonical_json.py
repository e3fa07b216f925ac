"""RFC 8785 JSON Canonicalization Scheme (JCS): the one canonical JSON of the platform.

The ledger hashes its entries and signs its tree heads over these bytes, and the catalogue
fingerprints dataset schemas with them, so the output must be exactly RFC 8785's, byte for byte.
The ``rfc8785`` package is the reference, in pure Python; for the documents the platform writes on
its hot path (strings, booleans, null, safe integers, lists and objects) the standard library's C
encoder gives the same bytes several times faster, and :func:`dumps` uses it when it may:

* strings: ``json`` with ``ensure_ascii=False`` escapes exactly what RFC 8785 §3.2.2.2 escapes
  (``"``, ``\\``, the short forms ``\\b \\f \\n \\r \\t``, every other control character as
  ``\\u00xx`` in lower case) and writes everything else as it is; UTF-8 encoding then refuses a
  lone surrogate, which RFC 8785 cannot represent either;
* integers within ±(2**53 - 1) (RFC 8785 §3.2.2.3 serialises numbers as IEEE 754 doubles, whose
  integers are exact in that range) are written alike in decimal;
* object members: RFC 8785 §3.2.3 sorts them by the UTF-16 code units of their names, Python by
  code points. The two orders differ only between a character above U+FFFF (a surrogate pair,
  0xD800-0xDBFF first) and one in U+E000-U+FFFF, so objects with a name above U+FFFF take the
  reference path.

Anything else (a float, whose shortest form RFC 8785 takes from ECMAScript, a subclass of a JSON
type, an integer out of range, a non-string name) goes to ``rfc8785``, which serialises or refuses
it as it always did.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE_INTEGER = 2**53 - 1
_FIRST_ASTRAL = "\U00010000"
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False).encode


def dumps(value: Any) -> bytes:
    """Return *value* as RFC 8785 canonical JSON in UTF-8; raise ``rfc8785.CanonicalizationError`` if it has none."""
    if _plain(value):
        try:
            return _encode(value).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference refuses it with its own error
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    """Tell whether the standard library's encoder writes *value* exactly as RFC 8785 does."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        safe: bool = -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
        return safe
    if kind is dict:
        for name, item in value.items():
            if type(name) is not str or (not name.isascii() and max(name) >= _FIRST_ASTRAL):
                return False
            if type(item) is not str and not _plain(item):  # strings inline: most members are
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) is str or _plain(item) for item in value)
    return False
