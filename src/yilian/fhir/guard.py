"""The router's checks of each interaction against its caller's Access (fhir.access).

    require(ctx, interaction, type)    the scopes allow it, or 403
    confine(access, type, expression)  a search of a `patient/`-confined caller reaches only
                                       its patient's compartment: part of the search's SQL,
                                       so pages and totals count only what it may see
    require_member(ctx, type, id)      a confined read or write touches only that compartment
    visible(ctx, versions)             the `_include`d resources the caller may read
    require_instance, written, require_unconfined, require_everything
                                       the router's and a transaction's checks of one
                                       interaction, before and after it

Types outside the Patient compartment (Organization, Practitioner, Medication...) are not
patient data: a `patient/` grant on them reaches all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from sqlalchemy import select

from yilian.errors import Forbidden, NotFound
from yilian.fhir.access import Access, Interaction
from yilian.fhir.interactions import Context
from yilian.fhir.messages import FhirResponse
from yilian.fhir.search.expressions import All, Expression, Ids
from yilian.fhir.search.plan import Names, matching_pks
from yilian.fhir.search.query import compartment_expression
from yilian.fhir.store import sql as store
from yilian.fhir.store.sql import StoredVersion
from yilian.fhir.store.tables import resource


def require(ctx: Context, interaction: Interaction, res_type: str) -> None:
    ctx.access.require(interaction, res_type)


@cache
def _compartment_types() -> frozenset[str]:
    from yilian.fhir.definitions import patient_compartment

    return frozenset(entry["code"] for entry in patient_compartment()["resource"]
                     if entry.get("param"))


def _confined_to(access: Access, interaction: Interaction, res_type: str) -> str | None:
    """The patient a caller is confined to for this type, if it is."""
    if access.patient is None or res_type not in _compartment_types():
        return None
    return access.patient if access.confined(interaction, res_type) else None


def confine(access: Access, res_type: str, expression: Expression) -> Expression:
    patient = _confined_to(access, Interaction.SEARCH, res_type)
    if patient is None:
        return expression
    return All((expression, compartment_expression("Patient", patient, res_type)))


def _members(ctx: Context, res_type: str, patient: str, res_ids: Sequence[str]) -> set[str]:
    """Which of these resources are in the patient's compartment."""
    expression = All((Ids(tuple(res_ids)), compartment_expression("Patient", patient,
                                                                  res_type)))
    inside = matching_pks(expression, res_type, ctx.base_url, Names())
    return set(ctx.conn.scalars(select(resource.c.res_id).where(resource.c.pk.in_(inside))))


def require_member(ctx: Context, interaction: Interaction, res_type: str, res_id: str, *,
                   unseen: bool = False) -> None:
    """For a confined caller: the resource must be in its patient's compartment. One outside
    that the caller has not seen (any read; a write to an existing resource: `unseen`)
    answers as if it did not exist: its existence is not the caller's to know. What a write
    would leave outside is refused."""
    patient = _confined_to(ctx.access, interaction, res_type)
    if patient is None:
        return
    if ctx.uow is not None:
        ctx.uow.flush()
    if _members(ctx, res_type, patient, (res_id,)):
        return
    if unseen or interaction in (Interaction.READ, Interaction.SEARCH):
        raise NotFound("YL-1010", f"{res_type}/{res_id} is not known")
    raise Forbidden("YL-4031", f"{res_type}/{res_id} is not in the compartment of "
                    f"Patient/{patient}, the only patient this access token reaches",
                    expression=(res_type,))


def visible(ctx: Context, versions: Sequence[StoredVersion]) -> list[StoredVersion]:
    """The versions the caller may read: by type, and for a confined caller only those in
    its patient's compartment."""
    access = ctx.access
    confined: dict[str, list[str]] = {}
    for version in versions:
        if _confined_to(access, Interaction.READ, version.res_type) is not None:
            confined.setdefault(version.res_type, []).append(version.res_id)
    members = {(res_type, res_id) for res_type, res_ids in confined.items()
               for res_id in _members(ctx, res_type, access.patient or "", res_ids)}
    return [version for version in versions
            if access.allows(Interaction.READ, version.res_type)
            and (version.res_type not in confined
                 or (version.res_type, version.res_id) in members)]


def require_instance(ctx: Context, interaction: Interaction, res_type: str, res_id: str,
                      *, may_be_new: bool = False) -> None:
    """The scopes allow the interaction on the type and, for a caller confined to a
    patient's compartment, the resource is in it (or does not exist yet, for an update
    that may create it)."""
    require(ctx, interaction, res_type)
    if may_be_new and not store.exists(ctx.conn, res_type, res_id):
        return
    require_member(ctx, interaction, res_type, res_id, unseen=True)


def written(ctx: Context, interaction: Interaction, res_type: str,
             response: FhirResponse) -> FhirResponse:
    """A confined caller's write must leave the resource in its patient's compartment; if
    not, the refusal rolls the transaction back."""
    if response.stored is not None and response.status in (200, 201):
        require_member(ctx, interaction, res_type, response.stored.res_id)
    return response


def require_unconfined(ctx: Context, interaction: Interaction, res_type: str) -> None:
    """Interactions that reach resources by criteria (a type's history, conditional update
    and delete) are not confined to one compartment: a confined caller may not use them."""
    require(ctx, interaction, res_type)
    if ctx.access.patient is not None and ctx.access.confined(interaction, res_type):
        raise Forbidden("YL-4032", f"A patient's access token cannot {interaction.name.lower()} "
                        f"{res_type} resources by criteria or history", expression=(res_type,))


def require_everything(ctx: Context, interaction: Interaction) -> None:
    """Across all types (system history, system operations that change data)."""
    require_unconfined(ctx, interaction, "*")
