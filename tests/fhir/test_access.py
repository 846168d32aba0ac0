"""Access: which callers are bound to their organizations' patients (fhir.access)."""

from __future__ import annotations

from yilian.fhir.access import Access, Grant, Interaction

EVERYTHING = frozenset(Interaction)


def test_only_user_grants_of_staff_are_bound_and_need_their_emergencies() -> None:
    system = Grant("system", "*", EVERYTHING)
    user = Grant("user", "*", EVERYTHING)
    backend = Access((system,), subject="user bench", organizations=("h1",))
    assert not backend.staff_bound_anywhere
    assert not backend.staff_bound(Interaction.READ, "Patient")
    nurse = Access((user,), subject="user nurse", organizations=("h1",))
    assert nurse.staff_bound_anywhere and nurse.staff_bound(Interaction.READ, "Patient")
    administrator = Access((user,), subject="user admin")  # no organizations: no bound
    assert not administrator.staff_bound_anywhere
    # A user grant beside a system one: conservatively bound somewhere.
    assert Access((system, Grant("user", "Patient", frozenset({Interaction.READ}))),
                  organizations=("h1",)).staff_bound_anywhere
