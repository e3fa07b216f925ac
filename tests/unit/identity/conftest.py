"""Fixtures of the authorization server's tests, shared by its test modules (test_oauth.py defines them)."""

from __future__ import annotations

from tests.unit.identity.test_oauth import issuer, rp

__all__ = ["issuer", "rp"]
