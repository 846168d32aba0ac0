"""Search statements, built once per shape (search.binding) and kept for the next search."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Executable

T = TypeVar("T", bound=Executable)

SIZE = 2048  # shapes kept: each a statement and SQLAlchemy's compiled form of it


class Statements:
    """Statements by key, the least recently used dropped beyond `size`. Threads share it:
    a statement is immutable once built (two threads may build the same one; either
    serves)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.built = 0  # statements built, for tests and benchmarks

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found  # type: ignore[no-any-return]
        made = build()
        with self._lock:
            self.built += 1
            self._kept[key] = made
            if len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return made


STATEMENTS = Statements()
