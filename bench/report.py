"""The result lines: a table on stdout, the same lines appended to bench/results/latest.json.

`ratio` is always the fraction of the ceiling's performance reached (higher is better):
ours / ceiling for a rate, ceiling / ours for a latency.
"""

from __future__ import annotations

import json
import math
import platform
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Line:
    database: str
    measure: str
    unit: str
    ours: float | None
    ceiling: float | None = None
    higher_is_better: bool = True
    goal: float | None = None  # on `ours` (absolute), or on the ratio when goal_on_ratio
    goal_on_ratio: bool = False
    note: str = ""
    ratio_goal: float | None = None  # a second goal, on the ratio, with an absolute `goal`

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.ceiling is None or not self.ours or not self.ceiling:
            return None
        return self.ours / self.ceiling if self.higher_is_better else self.ceiling / self.ours

    @property
    def met(self) -> bool | None:
        if self.goal is None and self.ratio_goal is None:
            return None
        met = True
        if self.goal is not None:
            value = self.ratio if self.goal_on_ratio else self.ours
            if value is None:
                return False
            met = value >= self.goal if self.higher_is_better or self.goal_on_ratio else (
                value <= self.goal
            )
        if self.ratio_goal is not None:
            met = met and self.ratio is not None and self.ratio >= self.ratio_goal
        return met

    def goal_text(self) -> str:
        targets = []
        if self.goal is not None:
            if self.goal_on_ratio:
                targets.append(f"≥ {self.goal:.0%}")
            else:
                bound = _number(self.goal) + ("%" if self.unit == "%" else "")
                targets.append(f"{'≥' if self.higher_is_better else '≤'} {bound}")
        if self.ratio_goal is not None:
            targets.append(f"≥ {self.ratio_goal:.0%}")
        if not targets:
            return ""
        return f"{', '.join(targets)} {'met' if self.met else 'MISSED'}"


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


HEADER = ("database", "measure", "unit", "yilian", "ceiling", "of ceiling", "goal")


def render(lines: list[Line]) -> str:
    rows = [HEADER] + [
        (
            line.database,
            line.measure,
            line.unit,
            _number(line.ours),
            _number(line.ceiling),
            _ratio(line.ratio),
            line.goal_text(),
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    numeric = {3, 4, 5}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(rows[0]), rule, *(fmt(row) for row in rows[1:])])


def append_json(lines: list[Line], context: dict[str, Any]) -> Path:
    """Append one JSON object per line (JSON Lines) to bench/results/latest.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "latest.json"
    run = {
        "run": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        **context,
    }
    with path.open("a", encoding="utf-8") as out:
        for line in lines:
            record = {
                **run,
                **asdict(line),
                "ratio": line.ratio,
                "met": line.met,
            }
            record = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                      for k, v in record.items()}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


@dataclass
class Half:
    """One database's lines and notes."""

    lines: list[Line]
    notes: list[str]


def say(message: str) -> None:
    """Progress, on stderr (the table goes to stdout)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
