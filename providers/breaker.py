"""A circuit breaker per provider (DESIGN §4.2): stop calling a provider that keeps failing.

Closed: calls go through; ``threshold`` consecutive failures open the circuit. Open: no call is
made (the outcome is ``unavailable`` at once) until ``cool_down`` seconds have passed. Half-open:
one trial call goes through; its success closes the circuit, its failure opens it again. The state
lives in the process (each platform node protects itself); time comes from the platform's clock
so that tests can move it.
"""

from __future__ import annotations

import math
import threading
from enum import StrEnum

from mydata.clock import Clock


class CircuitState(StrEnum):
    """The state of one provider's circuit."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """The circuit of one provider; safe to use from several threads."""

    def __init__(self, threshold: int, cool_down_seconds: float, clock: Clock) -> None:
        self.threshold = threshold
        self.cool_down_seconds = cool_down_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        """Return the state as the next call would find it."""
        with self._lock:
            return self._state(self.clock.now().timestamp())

    def _state(self, now: float) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if now - self._opened_at >= self.cool_down_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def admit(self) -> int | None:
        """Let a call through (``None``), or return the whole seconds until the circuit lets one through."""
        with self._lock:
            now = self.clock.now().timestamp()
            state = self._state(now)
            if state is CircuitState.CLOSED:
                return None
            if state is CircuitState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return None
            assert self._opened_at is not None
            return max(1, math.ceil(self._opened_at + self.cool_down_seconds - now))

    def record(self, success: bool) -> None:
        """Record the outcome of a call that :meth:`admit` let through."""
        with self._lock:
            now = self.clock.now().timestamp()
            trial = self._trial_in_flight
            self._trial_in_flight = False
            if success:
                self._failures = 0
                self._opened_at = None
                return
            self._failures += 1
            if trial or self._failures >= self.threshold:
                self._opened_at = now


class CircuitBreakers:
    """One circuit per provider id, created on first use."""

    def __init__(self, threshold: int, cool_down_seconds: float, clock: Clock) -> None:
        self.threshold = threshold
        self.cool_down_seconds = cool_down_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[str, CircuitBreaker] = {}

    def __getitem__(self, provider_id: str) -> CircuitBreaker:
        """Return the circuit of *provider_id*."""
        with self._lock:
            circuit = self._circuits.get(provider_id)
            if circuit is None:
                circuit = CircuitBreaker(self.threshold, self.cool_down_seconds, self.clock)
                self._circuits[provider_id] = circuit
            return circuit
