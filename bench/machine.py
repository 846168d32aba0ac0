"""Is the machine quiet? Other processes on a 2-core box skew every figure of the bench."""

from __future__ import annotations

import time
from pathlib import Path


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def busy_share(seconds: float = 1.0) -> float | None:
    """The share of all CPUs busy over the next `seconds` (while the bench itself waits)."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def quiet_note(label: str, threshold: float = 0.15) -> str | None:
    """A warning when other processes keep the CPUs busy before a measurement starts."""
    share = busy_share()
    if share is None or share < threshold:
        return None
    return (f"{label}: the machine was busy before the measurements ({share:.0%} of all CPUs "
            "used by other processes); these figures are noisy")
