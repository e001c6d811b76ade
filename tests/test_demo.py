"""``lob demo``: the simulated market trades in real time for the seconds asked and prints it as it goes."""
import re
import time
from pathlib import Path

import pytest

from lob.__main__ import main


def test_demo_trades_for_the_seconds_asked_and_prints_progress(capsys):
    t0 = time.monotonic()
    assert main(["demo", "--seconds", "1.5", "--every", "0.5", "--seed", "3"]) == 0
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    progress = re.findall(r"^\s*([\d.]+)s\s+([\d,]+)\s+([\d,]+)\s", out, re.M)
    assert len(progress) >= 3, out                       # one line per half second
    events = [int(e.replace(",", "")) for _, e, _ in progress]
    assert events == sorted(events) and events[-1] > events[0]
    assert elapsed >= 1.5                                # it ran for the time asked, not one batch
    trades = int(re.search(r"([\d,]+) trades, seq", out).group(1).replace(",", ""))
    assert trades > 0
    for s in ("AAPL", "GOOGL", "MSFT", "TSLA"):
        assert re.search(rf"^{s}\s+bid\s+[\d.]+ x", out, re.M), out
    assert "market maker: inventory" in out


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--every", "-1"]])
def test_demo_rejects_bad_durations(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", *argv])
    assert e.value.code == 2 and "must be > 0" in capsys.readouterr().err


def test_readme_taste_snippet_runs_and_shows_what_its_comments_say():
    # every name the snippet uses is defined in it, and each commented result is what the line gives
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A taste"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    ns: dict = {}
    checked = 0
    for line in code.strip().splitlines():
        stmt, _, comment = line.partition("  # ")
        expected = re.match(r"\s*(\(.*\)|\{.*\})(:|$)", comment)
        if expected and not re.search(r"=(?!=)", stmt.split("(")[0]):
            assert repr(eval(stmt, ns)) == expected.group(1), line            # an expression and its value
            checked += 1
        else:
            exec(stmt, ns)
    assert checked == 3 and "events" in ns and len(ns["fills"]) == 1
