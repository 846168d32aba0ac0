"""The router's checks of each interaction against its caller's Access (fhir.access).

    require(ctx, interaction, type)    the scopes allow it, or 403
    confine(access, type, expression)
                                       a search reaches only what the caller may see: part
                                       of the search's SQL, so pages and totals count only that
    require_member(ctx, type, id)      a bound read or write touches only what it may see
    visible(ctx, versions)             the `_include`d resources the caller may read
    require_instance, written, require_unconfined, require_everything, require_patients_seen
                                       the router's and a transaction's checks of one
                                       interaction, before and after it

Who sees which patients' records (the Patient itself and its compartment):
- a `patient/` grant: its patient's compartment only;
- staff (`user/` grants with organizations): the patients of their organizations: managed
  by one (Patient.managingOrganization), seen there (an Encounter whose service provider it
  is, not ended more than `CARE_DAYS` ago), in its care (an EpisodeOfCare it manages, a
  CareTeam it is part of) or referred to it (a ServiceRequest it is to perform), each still
  open or closed at most `CARE_DAYS` ago, unless the
  patient's active Consent denies the organization (provision.type deny, provision.actor);
  and any patient opened to them for an emergency ("break the glass", auth.emergency),
  whatever the consent;
- `system/` grants and users without organizations (administrators): everyone.
Types outside the Patient compartment are reached by every grant on them, but by a
`patient/` grant only for reading the directory (Organization, Practitioner, Medication,
definitions...: `DIRECTORY_TYPES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import Select, select

from yilian.errors import Forbidden, NotFound, Unprocessable
from yilian.fhir.access import Access, Interaction
from yilian.fhir.interactions import Context
from yilian.fhir.masking import IDENTIFYING_PARAMETERS, carries_masks
from yilian.fhir.messages import FhirResponse
from yilian.fhir.search.binding import Binding
from yilian.fhir.search.expressions import (
    All,
    AnyOf,
    Chain,
    Expression,
    Has,
    Ids,
    Match,
    Not,
)
from yilian.fhir.search.plan import Names, matching_pks
from yilian.fhir.search.query import compartment_expression
from yilian.fhir.search.registry import SearchParam, get_registry
from yilian.fhir.search.values import DateValue, Prefix
from yilian.fhir.store import sql as store
from yilian.fhir.store.sql import StoredVersion
from yilian.fhir.store.tables import resource
from yilian.kit import jsonfmt
from yilian.kit.clock import utcnow

CARE_DAYS = 90  # how long after an encounter ends its hospital still sees the patient


def require(ctx: Context, interaction: Interaction, res_type: str) -> None:
    ctx.access.require(interaction, res_type)


@cache
def _compartment_params() -> dict[str, tuple[str, ...]]:
    """Per type in the Patient compartment: the parameters that point at the patient."""
    from yilian.fhir.definitions import patient_compartment

    return {entry["code"]: tuple(entry["param"]) for entry in patient_compartment()["resource"]
            if entry.get("param")}


# What a patient's token reads outside its compartment: the network's directory and the
# definitions (no other patient's data lives in these).
DIRECTORY_TYPES = frozenset({
    "Organization", "OrganizationAffiliation", "Location", "Practitioner", "PractitionerRole",
    "HealthcareService", "Endpoint", "Schedule", "Slot", "Medication", "MedicationKnowledge",
    "Substance", "ValueSet", "CodeSystem", "ConceptMap", "NamingSystem", "StructureDefinition",
    "SearchParameter", "OperationDefinition", "CapabilityStatement", "Questionnaire",
    "PlanDefinition", "ActivityDefinition", "Library", "Measure"})
_NOTHING: Expression = Ids(())


def _bound(access: Access, interaction: Interaction, res_type: str) -> Expression | None:
    """What a resource of `res_type` must match for this caller to see it; None: anything."""
    in_compartment = res_type in _compartment_params() or res_type == "Patient"
    if access.patient is not None and access.confined(interaction, res_type):
        if in_compartment:
            return compartment_expression("Patient", access.patient, res_type)
        # Outside it: the directory may be read; nothing else, and nothing written.
        reads = interaction in (Interaction.READ, Interaction.SEARCH)
        return None if reads and res_type in DIRECTORY_TYPES else _NOTHING
    if not in_compartment:
        return None
    if access.staff_bound(interaction, res_type):
        patients = _patients_of(access.organizations, access.emergency)
        if res_type == "Patient":
            return patients
        return _about_patients(res_type, patients)
    return None


def _param(res_type: str, code: str) -> SearchParam:
    found = get_registry().get(res_type, code)
    assert found is not None, f"{res_type}.{code}"
    return found


def _patients_of(organizations: Sequence[str], emergency: Sequence[str]) -> Expression:
    """Patients of these organizations (see the module docstring)."""
    orgs = tuple(f"Organization/{org}" for org in organizations)
    # To the minute: the rule, and so its SQL (`_members_statement`), stays the same a while.
    since = (utcnow() - timedelta(days=CARE_DAYS)).replace(second=0, microsecond=0)
    recent = DateValue(Prefix.GE, since, since + timedelta(microseconds=999_999))
    links: list[Expression] = [
        Match(_param("Patient", "organization"), None, orgs),
        Has("Encounter", _param("Encounter", "patient"), All((
            Match(_param("Encounter", "service-provider"), None, orgs),
            Match(_param("Encounter", "date"), None, (recent,))))),
        Has("EpisodeOfCare", _param("EpisodeOfCare", "patient"), All((
            Match(_param("EpisodeOfCare", "organization"), None, orgs),
            _open_or_recent("EpisodeOfCare", "date", ("planned", "waitlist", "active",
                                                      "onhold"), recent)))),
        Has("CareTeam", _param("CareTeam", "patient"), All((
            Match(_param("CareTeam", "participant"), None, orgs),
            _open_or_recent("CareTeam", "date", ("proposed", "active", "suspended"),
                            recent)))),
        Has("ServiceRequest", _param("ServiceRequest", "patient"), All((
            Match(_param("ServiceRequest", "performer"), None, orgs),
            _open_or_recent("ServiceRequest", "authored", ("draft", "active", "on-hold"),
                            recent)))),
    ]
    theirs: Expression = All((AnyOf(tuple(links)), Not(_withheld(orgs))))
    if emergency:  # an emergency opens the record whatever the links and consents
        return AnyOf((Ids(tuple(emergency)), theirs))
    return theirs


def _withheld(orgs: tuple[str, ...]) -> Expression:
    """Patients whose active consent denies one of these organizations (which withdraws it,
    whatever the links)."""
    return Has("Consent", _param("Consent", "patient"), All((
        Match(_param("Consent", "status"), None, ("active",)),
        Match(_param("Consent", "provision-type"), None, ("deny",)),
        Match(_param("Consent", "actor"), None, orgs))))


def patients_in_care_seen(ctx: Context, patient_ids: Sequence[str], organization: str
                          ) -> set[str]:
    """Of patients in an ongoing stay whose Encounter `organization` provides, those the
    caller may read. That Encounter is itself one of the links of `_patients_of`, so for
    staff of that organization only a consent's denial hides them: one small Consent lookup
    instead of the whole rule per patient (a ward's board shows hundreds)."""
    access = ctx.access
    if not patient_ids or _bound(access, Interaction.READ, "Patient") is None:
        return set(patient_ids) if access.allows(Interaction.READ, "Patient") else set()
    if organization not in access.organizations:
        return _members(ctx, Interaction.READ, "Patient", patient_ids)
    orgs = tuple(f"Organization/{org}" for org in access.organizations)
    hidden = set(ctx.conn.scalars(_members_statement("Patient", _withheld(orgs), ctx.base_url),
                                  {_IDS: list(patient_ids)}))
    # An emergency opening shows a patient whatever the consents.
    return (set(patient_ids) - hidden) | (set(access.emergency) & set(patient_ids))


def _open_or_recent(res_type: str, date_code: str, open_statuses: tuple[str, ...],
                    recent: DateValue) -> Expression:
    """Still open, or closed at most `CARE_DAYS` ago (by its period or date)."""
    return AnyOf((Match(_param(res_type, "status"), None, open_statuses),
                  Match(_param(res_type, date_code), None, (recent,))))


def _about_patients(res_type: str, patients: Expression) -> Expression:
    """A resource of `res_type` whose compartment parameters point at one of `patients`."""
    chains: list[Expression] = []
    for code in _compartment_params()[res_type]:
        param = get_registry().get(res_type, code)
        if param is not None and (not param.targets or "Patient" in param.targets):
            chains.append(Chain(param, (("Patient", patients),)))
    return AnyOf(tuple(chains))


# The types whose resources make a patient one of an organization's (`_patients_of`): a
# bound caller's write of one must not be what makes the patient theirs.
LINK_TYPES = frozenset({"Encounter", "EpisodeOfCare", "CareTeam", "ServiceRequest"})


def _patients_in(res_type: str, body: object, local_base: str) -> set[str]:
    """The ids of this server's Patients a resource's compartment parameters point at."""
    from yilian.fhir.search.extract import extract_index_rows
    from yilian.fhir.search.rows import ReferenceRow

    params = set(_compartment_params().get(res_type, ()))
    if not isinstance(body, dict):
        return set()
    rows = extract_index_rows(body, local_base=local_base)
    references = cast(list[ReferenceRow], rows["reference"])
    return {row.target_id for row in references
            if row.param in params and row.target_type == "Patient" and row.target_id}


def seen_versions(ctx: Context, res_type: str, versions: Sequence[StoredVersion]
                  ) -> list[StoredVersion]:
    """The versions of one resource a bound caller may see: a resource moved from another
    patient keeps that patient's data in its earlier versions, shown to no one bound away
    from them."""
    if res_type == "Patient" or _bound(ctx.access, Interaction.READ, res_type) is None:
        return list(versions)
    about = {version.version: _patients_in(res_type, jsonfmt.loads(version.content), ctx.base_url)
             for version in versions if version.content is not None}
    wanted = sorted(set().union(*about.values())) if about else []
    seen = _members(ctx, Interaction.READ, "Patient", wanted) if wanted else set()
    return [version for version in versions
            if version.content is None or about[version.version] <= seen]


def require_patients_seen(ctx: Context, interaction: Interaction, res_type: str,
                          body: object) -> None:
    """Before a bound caller writes an Encounter, EpisodeOfCare, CareTeam or ServiceRequest:
    every patient it is about must be one the caller sees already (else writing it would
    open that patient's records to them: break the glass is the way for that). Refused
    alike whether or not the patient exists."""
    if res_type not in LINK_TYPES or _bound(ctx.access, interaction, res_type) is None:
        return
    patients = _patients_in(res_type, body, ctx.base_url)
    if ctx.uow is not None:
        ctx.uow.flush()  # a patient registered earlier in the same transaction counts
    if patients and patients <= _members(ctx, Interaction.READ, "Patient", sorted(patients)):
        return
    raise Forbidden("YL-4034", f"This {res_type} is about a patient whose records this access "
                    "token does not reach; it cannot be what opens them (break the glass for "
                    "an emergency)", expression=(res_type,))


def require_unmasked(ctx: Context, body: object) -> None:
    """A caller who reads masked numbers must not write them back over the real ones."""
    if ctx.access.masked and carries_masks(body):
        raise Unprocessable("YL-4036", "The resource holds masked numbers (as this access "
                            "token reads them): writing it would replace the real ones")


def confine(access: Access, res_type: str, expression: Expression,
            interaction: Interaction = Interaction.SEARCH) -> Expression:
    """The expression as this caller may search with it: bounded on `res_type`, and every
    chain and `_has` inside it allowed (search on the types they look into) and bounded on
    those types too, so that no criterion reveals what the caller may not see."""
    if access.masked:
        _refuse_identifying(expression)
    nested = _nested(access, expression)
    bound = _bound(access, interaction, res_type)
    return nested if bound is None else All((nested, bound))


def _refuse_identifying(expression: Expression) -> None:
    """A caller who reads masked numbers cannot search by them (it would confirm a guess)."""
    match expression:
        case All(children) | AnyOf(children):
            for child in children:
                _refuse_identifying(child)
        case Chain(_, targets):
            for _, inner in targets:
                _refuse_identifying(inner)
        case Has(_, _, inner):
            _refuse_identifying(inner)
        case Match(param, _, _) if param.code in IDENTIFYING_PARAMETERS:
            raise Forbidden("YL-4037", f"This access token reads identity and phone numbers "
                            f"masked: it cannot search by '{param.code}'",
                            expression=(param.code,))


def _nested(access: Access, expression: Expression) -> Expression:
    match expression:
        case All(children):
            return All(tuple(_nested(access, c) for c in children))
        case AnyOf(children):
            return AnyOf(tuple(_nested(access, c) for c in children))
        case Chain(param, targets):
            for target_type, _ in targets:
                access.require(Interaction.SEARCH, target_type)
            return Chain(param, tuple((target_type, confine(access, target_type, inner))
                                      for target_type, inner in targets))
        case Has(source_type, param, inner):
            access.require(Interaction.SEARCH, source_type)
            return Has(source_type, param, confine(access, source_type, inner))
    return expression


def _members(ctx: Context, interaction: Interaction, res_type: str, res_ids: Sequence[str]
             ) -> set[str]:
    """Which of these resources the caller may see."""
    bound = _bound(ctx.access, interaction, res_type)
    if bound is None:
        return set(res_ids)
    return set(ctx.conn.scalars(_members_statement(res_type, bound, ctx.base_url),
                                {_IDS: list(res_ids)}))


_IDS = "member_ids"


@lru_cache(maxsize=256)
def _members_statement(res_type: str, rule: Expression, base_url: str | None) -> Select[Any]:
    """The ids, among those bound to `_IDS`, of the resources matching `rule`: built once per
    rule (per caller's organizations and minute), as building a rule's SQL costs
    milliseconds of Python, several times what running it does."""
    # The rule's values go into the statement (bind parameters with their values).
    inside = matching_pks(All((Ids((), _IDS), rule)), res_type, Names(Binding(base_url)))
    return select(resource.c.res_id).where(resource.c.pk.in_(inside))


def require_member(ctx: Context, interaction: Interaction, res_type: str, res_id: str, *,
                   unseen: bool = False) -> None:
    """For a bound caller: the resource must be one it may see. One it may not that it has
    not seen either (any read; a write to an existing resource: `unseen`) answers as if it
    did not exist: its existence is not the caller's to know. What a write would leave
    outside is refused."""
    if _bound(ctx.access, interaction, res_type) is None:
        return
    if ctx.uow is not None:
        ctx.uow.flush()
    if _members(ctx, interaction, res_type, (res_id,)):
        return
    if unseen or interaction in (Interaction.READ, Interaction.SEARCH):
        raise NotFound("YL-1010", f"{res_type}/{res_id} is not known")
    raise Forbidden("YL-4031", f"{res_type}/{res_id} would be out of the records this access "
                    "token reaches (its patient's, or its organizations' patients')",
                    expression=(res_type,))


def visible(ctx: Context, versions: Sequence[StoredVersion]) -> list[StoredVersion]:
    """The versions the caller may read: by type, and for a bound caller only those it may
    see."""
    access = ctx.access
    bound_types = {res_type for res_type in {v.res_type for v in versions}
                   if _bound(access, Interaction.READ, res_type) is not None}  # once per type
    by_type: dict[str, list[str]] = {}
    for version in versions:
        if version.res_type in bound_types:
            by_type.setdefault(version.res_type, []).append(version.res_id)
    seen = {(res_type, res_id) for res_type, res_ids in by_type.items()
            for res_id in _members(ctx, Interaction.READ, res_type, res_ids)}
    return [version for version in versions
            if access.allows(Interaction.READ, version.res_type)
            and (version.res_type not in by_type or (version.res_type, version.res_id) in seen)]


def require_instance(ctx: Context, interaction: Interaction, res_type: str, res_id: str,
                      *, may_be_new: bool = False) -> None:
    """The scopes allow the interaction on the type and, for a caller confined to a
    patient's compartment, the resource is in it (or does not exist yet, for an update
    that may create it)."""
    require(ctx, interaction, res_type)
    if may_be_new and store.read_current(ctx.conn, res_type, res_id) is None:
        return  # never existed (a deleted one is not new: its history is someone's record)
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
    and delete) are not bounded: a bound caller may not use them."""
    require(ctx, interaction, res_type)
    if (res_type == "*" and (ctx.access.patient is not None or ctx.access.organizations)) \
            or _bound(ctx.access, interaction, res_type) is not None:
        raise Forbidden("YL-4032", f"This access token reaches some patients' records only: "
                        f"it cannot {interaction.name.lower()} {res_type} resources by "
                        "criteria or history", expression=(res_type,))


def require_everything(ctx: Context, interaction: Interaction) -> None:
    """Across all types (system history, system operations that change data)."""
    require_unconfined(ctx, interaction, "*")
