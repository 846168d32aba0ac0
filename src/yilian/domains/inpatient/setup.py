"""What the inpatient domain adds to the FHIR server: its operations and its write hooks."""

from __future__ import annotations

from yilian.domains.inpatient import beds, operations, stays
from yilian.fhir.operations import OperationRegistry
from yilian.fhir.store.sql import WriteHook


def install(registry: OperationRegistry, hooks: dict[str, list[WriteHook]]) -> None:
    operations.register(registry)
    beds.register_hooks(hooks)
    stays.register_hooks(hooks)


def write_hooks() -> dict[str, list[WriteHook]]:
    """The hooks alone, for tools that write through the store without the router."""
    hooks: dict[str, list[WriteHook]] = {}
    beds.register_hooks(hooks)
    stays.register_hooks(hooks)
    return hooks
