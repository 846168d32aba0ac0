"""Micro-benchmark of index extraction (not a test): µs per resource over the official examples.

    .venv/bin/python tests/fhir/search/perf_extract.py [--repeat N]

For each resource type, every example is extracted N times once the plan is compiled (the
steady state of a running server); a resource's time is its fastest run, because on a shared
(virtual) machine slower runs mostly measure the neighbours. Reported: the mean and the
median over the examples, the slowest example, and the rows produced.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from yilian.fhir.search.extract import extract_index_rows
from yilian.kit import jsonfmt

EXAMPLES = Path(__file__).resolve().parents[3] / ".cache" / "fhir-r4-examples" / "package"
TYPES = ("Patient", "Observation", "Encounter", "MedicationRequest", "Condition")


def load(res_type: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob(f"{res_type}-*.json")):
        resource = jsonfmt.loads(path.read_bytes())
        if resource.get("resourceType") == res_type:
            found.append((path.name, resource))
    return found


def fastest(resource: dict[str, Any], repeat: int) -> float:
    """µs of the fastest of `repeat` extractions."""
    best = float("inf")
    clock = time.perf_counter
    for _ in range(repeat):
        start = clock()
        extract_index_rows(resource)
        best = min(best, clock() - start)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="µs per resource of extract_index_rows")
    parser.add_argument("--repeat", type=int, default=300, help="runs per example")
    args = parser.parse_args()
    if not EXAMPLES.exists():
        raise SystemExit(f"examples missing at {EXAMPLES}: run `make examples`")
    header = f"{'type':<18}{'examples':>9}{'mean µs':>10}{'median µs':>11}{'rows':>7}  slowest"
    print(header)
    for res_type in TYPES:
        examples = load(res_type)
        for _, resource in examples:  # compile the plan, warm the caches
            extract_index_rows(resource)
        times = {name: fastest(resource, args.repeat) for name, resource in examples}
        rows = statistics.mean(
            sum(map(len, extract_index_rows(resource).values())) for _, resource in examples
        )
        slowest = max(times, key=times.__getitem__)
        print(
            f"{res_type:<18}{len(examples):>9}{statistics.mean(times.values()):>10.1f}"
            f"{statistics.median(times.values()):>11.1f}{rows:>7.1f}"
            f"  {slowest} {times[slowest]:.0f} µs"
        )


if __name__ == "__main__":
    main()
