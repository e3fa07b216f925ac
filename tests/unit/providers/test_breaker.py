"""The circuit breaker per provider: open after repeated failures, one trial after the cool-down."""

from __future__ import annotations

from mydata.clock import FrozenClock
from providers.breaker import CircuitBreaker, CircuitBreakers, CircuitState


def breaker(clock: FrozenClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cool_down_seconds=30, clock=clock)


def fail(circuit: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert circuit.admit() is None
        circuit.record(success=False)


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    clock = FrozenClock()
    circuit = breaker(clock)
    fail(circuit, 2)
    assert circuit.state is CircuitState.CLOSED
    fail(circuit, 1)
    assert circuit.state is CircuitState.OPEN
    assert circuit.admit() == 30
    clock.advance(10.5)
    assert circuit.admit() == 20


def test_a_success_resets_the_count() -> None:
    circuit = breaker(FrozenClock())
    fail(circuit, 2)
    assert circuit.admit() is None
    circuit.record(success=True)
    fail(circuit, 2)
    assert circuit.state is CircuitState.CLOSED


def test_half_open_lets_one_trial_through_and_its_success_closes() -> None:
    clock = FrozenClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(30)
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.admit() is None  # the trial
    assert circuit.admit() is not None  # nobody else while it is in flight
    circuit.record(success=True)
    assert circuit.state is CircuitState.CLOSED
    assert circuit.admit() is None


def test_a_failed_trial_opens_the_circuit_for_another_cool_down() -> None:
    clock = FrozenClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(31)
    fail(circuit, 1)
    assert circuit.state is CircuitState.OPEN
    assert circuit.admit() == 30


def test_one_circuit_per_provider() -> None:
    circuits = CircuitBreakers(threshold=1, cool_down_seconds=5, clock=FrozenClock())
    fail(circuits["mof-fia"], 1)
    assert circuits["mof-fia"].state is CircuitState.OPEN
    assert circuits["nhia"].state is CircuitState.CLOSED
    assert circuits["mof-fia"] is circuits["mof-fia"]
