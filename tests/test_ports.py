"""The exchange's declared ports (lob.ports): a journal attaches through ``attach_journal`` and acts on the
exchange only through the link it gets back; the public reads that the journal and the server use instead of
the engine (``next_order_id``, ``order_record``, ``snapshot_state`` / ``restore_state``, ``intake_error``)."""
import numpy as np
import pytest

import lob
from lob.errors import ConfigError, LobStateError
from lob.ports import JournalPort, journal_provider


class RecordingPort:
    """A journal port that keeps (copies of) what the exchange hands it."""

    def __init__(self, fail_input=False):
        self.calls = []
        self.fail_input = fail_input
        self.pipelined = []

    def write_input(self, events):
        if self.fail_input:
            raise OSError("disk full")
        self.calls.append(("input", events.copy()))

    def write_outputs(self, events, reports, fills):
        self.calls.append(("outputs", events.copy(), reports.copy(), fills.copy()))

    def stage_full(self):
        self.calls.append(("stage_full",))

    def begin_pipeline(self):
        self.pipelined.append("begin")
        return False            # never pipelines: large batches go through write_input / write_outputs whole

    def end_pipeline(self, drain):
        self.pipelined.append(("end", drain))


def exchange():
    return lob.Exchange(symbols=["X", "Y"], marketdata=False)


def test_the_journal_is_a_journal_port():
    assert isinstance(RecordingPort(), JournalPort)
    assert journal_provider().create is lob.journal.Journal     # registered by import lob


def test_an_attached_port_sees_every_input_before_its_outputs():
    ex = exchange()
    port = RecordingPort()
    link = ex.attach_journal(port)
    assert ex.journal is port and ex.journal_port is port
    r = ex.submit("X", "buy", 5, price=10.0, owner="a", ts_ns=1)
    ev = lob.empty_events(2)
    ev["qty_lots"], ev["price_ticks"], ev["side"], ev["ts_ns"] = 3, 1000, 1, 2
    ex.apply(ev)
    ex.halt("Y")
    kinds = [c[0] for c in port.calls]
    assert kinds == ["input", "outputs"] * 3
    assert port.calls[0][1]["qty_lots"][0] == 5 and port.calls[1][2]["order_id"][0] == r.order_id
    assert len(port.calls[2][1]) == 2 and port.calls[3][3]["qty_lots"].sum() == 5     # the batch's fills
    assert link.take_stage() is None                # nothing is staged without stage=True
    ex.detach_journal(port)
    ex.submit("X", "buy", 1, price=9.0)
    assert len(port.calls) == 6 and ex.journal_port is None


def test_a_staging_port_gets_blocks_through_its_link():
    ex = exchange()
    ex.owner_id("a")
    port = RecordingPort()
    link = ex.attach_journal(port, stage=True, stage_limit=3)
    assert not link.owners_pending                  # owners registered before the attachment count as written
    ex.submit("X", "buy", 1, price=10.0, owner="a")
    ex.submit("X", "buy", 1, price=10.0, owner="a")
    assert port.calls == []                         # staged in C: no Python call per request
    ex.submit("X", "sell", 2, price=10.0, owner="a")
    assert port.calls == [("stage_full",)]
    n, seq_after, idx, events, reports, fills = link.take_stage()
    assert n == 3 and seq_after == ex.seq
    assert len(events) == 3 * lob.EVENT_DTYPE.itemsize and len(fills) == 2 * lob.FILL_DTYPE.itemsize
    assert link.take_stage() is None
    # a new owner takes the write_input path until the journal has taken its name
    ex.submit("X", "buy", 1, price=9.0, owner="b")
    assert port.calls[-1][0] == "input" and link.owners_pending
    assert link.take_owners() == {2: "b"} and not link.owners_pending
    link.set_stage_limit(1)
    ex.submit("X", "buy", 1, price=9.0, owner="b")
    assert port.calls[-1] == ("stage_full",)
    with pytest.raises(ConfigError, match="stage limit"):
        link.set_stage_limit(0)


def test_intake_stops_only_through_the_link_or_a_failed_write():
    ex = exchange()
    port = RecordingPort()
    link = ex.attach_journal(port)
    oid = ex.submit("X", "buy", 5, price=10.0).order_id
    assert ex.intake_error is None
    with pytest.raises(AttributeError):
        ex.intake_error = "no"                      # read-only
    link.stop_intake("journal write failed: test")
    assert ex.intake_error == "journal write failed: test"
    assert ex.submit("X", "buy", 5, price=10.0).reason == "journal_unavailable"
    assert ex.cancel("X", oid).status == "cancelled"        # cancels still work
    with pytest.raises(LobStateError, match="intake is stopped"):
        ex.apply(lob.empty_events(1))


def test_a_failed_input_write_rejects_the_request_and_stops_intake():
    ex = exchange()
    ex.attach_journal(RecordingPort(fail_input=True))
    r = ex.submit("X", "buy", 5, price=10.0)
    assert r.status == "rejected" and r.reason == "journal_unavailable"
    assert "OSError: disk full" in ex.intake_error
    assert ex.book("X").best_bid() is None          # nothing unjournaled reached the book


def test_attach_checks_the_port_and_allows_one_journal():
    ex = exchange()
    with pytest.raises(ConfigError, match="write_input"):
        ex.attach_journal(object())
    port = RecordingPort()
    ex.attach_journal(port)
    with pytest.raises(LobStateError, match="already attached"):
        ex.attach_journal(RecordingPort())
    ex.detach_journal(RecordingPort())              # not the attached one: nothing happens
    assert ex.journal_port is port


def test_a_port_that_does_not_pipeline_gets_large_batches_whole(monkeypatch):
    import lob.exchange as lx

    monkeypatch.setattr(lx, "_PIPELINE_CHUNK", 4)
    ex = exchange()
    port = RecordingPort()
    ex.attach_journal(port)
    ev = lob.empty_events(10)
    ev["qty_lots"], ev["price_ticks"], ev["side"] = 1, 1000 + np.arange(10), 0
    ex.apply(ev)
    assert port.pipelined == ["begin"] and [c[0] for c in port.calls] == ["input", "outputs"]
    assert len(port.calls[0][1]) == 10


def test_next_order_id_and_order_record():
    ex = exchange()
    nxt = ex.next_order_id
    r = ex.submit("X", "buy", 5, price=10.0, owner="a")
    assert r.order_id == nxt and ex.next_order_id > nxt
    rec = ex.order_record("X", r.order_id)
    assert rec["qty_lots"] == 5 and rec["price_ticks"] == 1000 and rec["owner"] == ex.owner_id("a")
    assert ex.order_record(0, r.order_id) == rec            # a symbol index works too
    assert ex.order_record("Y", r.order_id) is None and ex.order_record("X", 0) is None
    with pytest.raises(ConfigError, match="order_id"):
        ex.order_record("X", "1")


def test_snapshot_state_restores_the_same_venue():
    ex = exchange()
    ex.submit("X", "buy", 5, price=10.0, owner="a")
    ex.submit("X", "sell", 2, price=10.0, owner="b")
    ex.submit("Y", "sell", 3, price=20.0, type="stop_limit", stop_price=19.0, owner="b")
    ex.halt("Y")
    state = ex.snapshot_state()
    assert state["halted"] == [False, True] and state["owners"] == ["a", "b"]
    new = lob.Exchange(marketdata=False)
    for spec in state["specs"]:
        new.add_symbol(**spec)
    new.restore_state(state)
    assert new.state_hash() == ex.state_hash() and new.next_order_id == ex.next_order_id
    assert new.owners() == ex.owners()
    other = lob.Exchange(symbols=["Y", "X"], marketdata=False)
    with pytest.raises(ConfigError, match="symbols"):
        other.restore_state(state)
