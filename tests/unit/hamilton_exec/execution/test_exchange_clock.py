"""ExchangeClock: the offset is server time minus the local midpoint of the request, kept in
step with ccxt's timeDifference, refreshed when due, and judged against max_clock_skew_ms."""

from datetime import UTC, datetime

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hamilton_exec.execution.exchange_clock import ExchangeClock
from tests.unit.live_fake_exchange import FakeBinance, FakeTime, exchange_section
from trading_core.errors import ExchangePermanentError, ExchangeTemporaryError


def _clock(time: FakeTime, server_ms: list[int], rtt_s: float = 0.2) -> ExchangeClock:
    def fetch_time() -> int:
        time.advance(rtt_s / 2)
        answer = server_ms.pop(0)
        time.advance(rtt_s / 2)
        return answer

    return ExchangeClock(fetch_time, max_skew_ms=1_000, sync_interval_s=60.0, now=time.now)


def test_offset_is_server_minus_the_local_midpoint() -> None:
    time = FakeTime(1_000.0)
    clock = _clock(time, [1_000_100 + 1_500])  # the server reads +1.5 s at the midpoint
    assert not clock.synced and clock.offset_ms == 0
    assert clock.sync() == 1_500
    assert clock.synced and clock.offset_ms == 1_500 and not clock.skew_ok
    assert clock.now_ms() == int(time.now() * 1000) + 1_500
    assert clock.now() == datetime.fromtimestamp((time.now() * 1000 + 1_500) / 1000, tz=UTC)


@given(st.integers(-10_000, 10_000), st.floats(0.0, 2.0))
def test_offset_within_half_the_round_trip_of_the_truth(true_offset: int, rtt_s: float) -> None:
    time = FakeTime(5_000.0)

    def fetch_time() -> int:
        time.advance(rtt_s * 0.3)  # the answer is stamped anywhere inside the round trip
        answer = int(time.now() * 1000) + true_offset
        time.advance(rtt_s * 0.7)
        return answer

    clock = ExchangeClock(fetch_time, max_skew_ms=1_000, sync_interval_s=60.0, now=time.now)
    assert abs(clock.sync() - true_offset) <= rtt_s * 500 + 1
    assert clock.skew_ok == (abs(clock.offset_ms) <= 1_000)


def test_sync_is_due_after_the_interval_only() -> None:
    time = FakeTime(0.0)
    clock = _clock(time, [0, 0], rtt_s=0.0)
    assert clock.sync_due and clock.maybe_sync()
    assert not clock.sync_due
    time.advance(59.0)
    assert not clock.sync_due
    time.advance(1.0)
    assert clock.sync_due


def test_failed_sync_keeps_the_last_offset_and_says_so() -> None:
    time = FakeTime(0.0)
    answers: list[int | Exception] = [
        200,
        ccxt.RequestTimeout("slow"),
        ccxt.AuthenticationError("no"),
    ]

    def fetch_time() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = ExchangeClock(fetch_time, max_skew_ms=1_000, sync_interval_s=1.0, now=time.now)
    clock.sync()
    time.advance(2.0)
    assert clock.maybe_sync() is False and clock.offset_ms == 200
    with pytest.raises(ExchangePermanentError):
        clock.sync()
    answers.append(ccxt.ExchangeNotAvailable("503"))
    with pytest.raises(ExchangeTemporaryError):
        clock.sync()


def test_clock_for_a_ccxt_client_keeps_its_time_difference_in_step() -> None:
    time = FakeTime()
    fake = FakeBinance(time, offset_ms=-700)
    clock = ExchangeClock.for_client(fake, exchange_section(), now=time.now)
    assert fake.options["adjustForTimeDifference"] is True
    assert clock.sync() == -700
    assert fake.options["timeDifference"] == 700  # ccxt: local - server
    assert clock.max_skew_ms == 1_000 and clock.sync_interval_s == 300.0
