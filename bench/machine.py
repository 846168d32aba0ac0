"""Is the machine quiet? Other processes on a 2-core box skew every figure of the bench."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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


@dataclass
class QuietLog:
    """Samples the CPUs just before each measurement (while nothing of the bench runs) and
    remembers the measurements that started on a busy machine."""

    seconds: float = 0.5
    threshold: float = 0.15
    busy: list[tuple[str, float]] = field(default_factory=list)

    def check(self, label: str) -> None:
        share = busy_share(self.seconds)
        if share is not None and share >= self.threshold:
            self.busy.append((label, share))

    def notes(self) -> list[str]:
        if not self.busy:
            return []
        where = ", ".join(f"{label} ({share:.0%})" for label, share in self.busy)
        return [f"other processes kept the CPUs busy just before: {where}; "
                "those figures are noisy"]
