"""The daemon notices a wall-clock step by comparing the wall clock with the monotonic clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.clock import ATHENS
from agent.core.clock_watch import REPORT_FOR_S, ClockWatch
from agent.core.metrics import Metrics


class Clocks:
    """A wall clock and a monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 12, 1, 12, 0, tzinfo=ATHENS)
        self.mono = 1000.0

    def run(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)


def watch(clocks: Clocks, metrics: Metrics) -> ClockWatch:
    return ClockWatch(lambda: clocks.wall, metrics, lambda: clocks.mono)


def steps_counted(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("pos_agent_clock_steps_total")
    assert value is not None
    return value


def test_clocks_running_together_are_no_step() -> None:
    clocks, metrics = Clocks(), Metrics()
    w = watch(clocks, metrics)
    for _ in range(100):
        clocks.run(5.0)
        clocks.step(0.5)  # NTP slewing and a late tick stay under the threshold
        assert w.look() is None
    assert w.recent() is None
    assert steps_counted(metrics) == 0


def test_a_step_back_is_seen_reported_for_a_day_and_counted() -> None:
    clocks, metrics = Clocks(), Metrics()
    w = watch(clocks, metrics)
    clocks.run(5.0)
    clocks.step(-3600.0)
    step = w.look()
    assert step is not None and step.by_s == -3600.0
    assert step.at == clocks.wall
    assert steps_counted(metrics) == 1

    clocks.run(REPORT_FOR_S - 10)  # still within the day: status keeps saying it
    recent = w.recent()
    assert recent is not None and recent.by_s == -3600.0
    clocks.run(20)
    assert w.recent() is None
    assert steps_counted(metrics) == 1  # seen once, not at every look


def test_a_step_forward_is_seen_too() -> None:
    clocks, metrics = Clocks(), Metrics()
    w = watch(clocks, metrics)
    clocks.step(90.0)
    recent = w.recent()
    assert recent is not None and recent.by_s == 90.0
