"""The send journal: a send is on disk before it leaves, so after a crash the broker knows
which decisions may be on the exchange (look them up) and which never left (send at once)."""

from pathlib import Path

import pytest

from hamilton_exec.execution.send_journal import SendJournal
from tests.unit.live_fake_exchange import (
    RECV_WINDOW_MS,
    FakeTime,
    SimulatedCrash,
    make_rig,
    order,
)

DEFINITIVE_S = (RECV_WINDOW_MS + 2_000) / 1000.0


def test_recorded_send_survives_reopen_and_old_lines_are_dropped(tmp_path: Path) -> None:
    clock = FakeTime()
    path = tmp_path / "journal.jsonl"
    journal = SendJournal(path, keep_s=100.0, now=clock.now)
    journal.record("ham-old", clock.now())
    clock.advance(50.0)
    journal.record("ham-new", clock.now())
    journal.close()
    clock.advance(60.0)
    reopened = SendJournal(path, keep_s=100.0, now=clock.now)
    assert reopened.last_sent("ham-old") is None  # 110 s old: past keep_s
    assert reopened.last_sent("ham-new") == pytest.approx(clock.now() - 60.0)
    assert reopened.last_sent("ham-never") is None
    assert len(path.read_text().splitlines()) == 1  # compacted


def test_torn_last_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"at": 1.0e12, "id": "ham-a"}\n{"at": 1.0e12, "id": "ham-b')
    journal = SendJournal(path, keep_s=1e13)
    assert journal.last_sent("ham-a") == 1.0e12
    assert journal.last_sent("ham-b") is None


def test_closed_journal_refuses_to_record(tmp_path: Path) -> None:
    journal = SendJournal(tmp_path / "j.jsonl")
    journal.close()
    with pytest.raises(OSError, match="closed"):
        journal.record("ham-x", 1.0)


def test_new_order_with_journal_is_sent_at_once_without_a_lookup(tmp_path: Path) -> None:
    rig = make_rig(age_s=0.0, journal=tmp_path / "j.jsonl")
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    started = rig.time.now()
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    signed = [kind for kind, _ in rig.fake.calls if kind in ("create", "fetch")]
    assert signed[0] == "create"  # no lookup first: the journal says it never left
    assert rig.fake.requests[0]["at"] - started < 1.0  # no wait for the recv window


def test_without_journal_new_order_waits_for_the_recv_window_after_start() -> None:
    rig = make_rig(age_s=0.0)
    started = rig.time.now()
    rig.broker.submit(order(rig.time, 0.01))
    rig.settle()
    assert rig.fake.requests[0]["at"] - started > DEFINITIVE_S


def test_crash_after_accept_state_lost_journal_prevents_double(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    rig = make_rig(journal=path)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    rig.fake.faults["create"].append("crash_after")
    with pytest.raises(SimulatedCrash):
        rig.broker.pump()
    rig.time.advance(1.0)
    fresh = rig.restart({}, journal=path)  # no saved state: only the journal knows
    fresh.broker.submit(request)  # the re-made decision, same client id
    reports = fresh.settle()
    assert [r.status for r in reports] == ["filled"]
    assert rig.fake.accepted[request.client_order_id] == 1 and len(rig.fake.requests) == 1


def test_crash_before_the_request_left_resends_once_past_the_window(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    rig = make_rig(journal=path)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    rig.fake.faults["create"].append("crash")  # journalled, then the process died
    with pytest.raises(SimulatedCrash):
        rig.broker.pump()
    journalled = SendJournal(path, now=rig.time.now).last_sent(request.client_order_id)
    assert journalled is not None
    fresh = rig.restart({}, journal=path)
    fresh.broker.submit(request)
    reports = fresh.settle()
    assert [r.status for r in reports] == ["filled"]
    assert rig.fake.requests[-1]["at"] - journalled > DEFINITIVE_S
    assert rig.fake.accepted[request.client_order_id] == 1
