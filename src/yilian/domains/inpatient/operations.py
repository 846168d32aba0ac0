"""$admit, $transfer, $discharge and the bed-state operations, declared by OperationDefinitions.

Input and output are FHIR Parameters; the parameter names are a contract with integration
engines (keep them stable). Each handler only parses, calls the service, and answers the
Encounter (or the bed's Location) in a parameter `return`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from yilian.domains.inpatient import service
from yilian.domains.inpatient.codes import ADMIT_SOURCE, ICD10, AdmitSource, Disposition
from yilian.domains.network.codes import CANONICAL
from yilian.errors import BadRequest, Unprocessable
from yilian.fhir.interactions import Context
from yilian.fhir.messages import FhirResponse
from yilian.fhir.operations import Invocation, Operation, OperationRegistry
from yilian.kit.clock import parse_datetime

JsonObject = dict[str, Any]
Action = Callable[[Context, Invocation], service.Done]


def register(registry: OperationRegistry) -> None:
    for definition, action in _OPERATIONS:
        registry.register(Operation(definition, _handler(action)))


def _handler(action: Action) -> Callable[[Context, Invocation], FhirResponse]:
    def handle(ctx: Context, call: Invocation) -> FhirResponse:
        done = action(ctx, call)
        return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": [
            {"name": "return", "resource": done.resource}]}, entities=done.touched)

    return handle


# --- the actions ----------------------------------------------------------------------------


def _admit(ctx: Context, call: Invocation) -> service.Done:
    params = _Params(call.parameters, "Encounter-admit")
    source = params.code("admitSource")
    admission = service.Admission(
        patient_id=params.reference("patient", "Patient", required=True),
        department_id=params.reference("department", "HealthcareService", required=True),
        bed_id=params.reference("bed", "Location", required=True),
        practitioner_id=params.reference("practitioner", "Practitioner", required=True),
        diagnoses=params.diagnoses(),
        admit_source=_admit_source(source) if source is not None else None,
        expected_discharge=params.date("expectedDischarge"),
    )
    return service.do_admit(ctx, admission)


def _admit_source(code: str) -> AdmitSource:
    for member in AdmitSource:
        if code in (member.value, member.hl7[0]):
            return member
    raise Unprocessable("YL-6150", f"admitSource is one of outpatient, emergency, referral "
                        f"(or the HL7 codes outp, emd, gp), not '{code}'",
                        expression=(_where("admitSource"),))


def _transfer(ctx: Context, call: Invocation) -> service.Done:
    params = _Params(call.parameters, "Encounter-transfer")
    assert call.res_id is not None
    transfer = service.Transfer(
        encounter_id=call.res_id,
        bed_id=params.reference("bed", "Location", required=True),
        reason=params.string("reason"),
        department_id=params.reference("department", "HealthcareService"),
    )
    return service.do_transfer(ctx, transfer)


def _discharge(ctx: Context, call: Invocation) -> service.Done:
    params = _Params(call.parameters, "Encounter-discharge")
    assert call.res_id is not None
    code = params.code("disposition", required=True)
    assert code is not None
    disposition = Disposition.parse(code)
    if disposition is None:
        raise Unprocessable("YL-6151", "disposition is one of "
                            f"{', '.join(d.value for d in Disposition)} (or the front sheet's "
                            f"1-5, 9, or the HL7 discharge-disposition code), not '{code}'",
                            expression=(_where("disposition"),))
    discharge = service.Discharge(call.res_id, disposition, params.diagnoses(),
                                  params.string("summary"))
    return service.do_discharge(ctx, discharge)


def _reserve(ctx: Context, call: Invocation) -> service.Done:
    params = _Params(call.parameters, "Location-reserve")
    assert call.res_id is not None
    until = params.datetime("expires", required=True)
    assert until is not None
    return service.do_reserve(ctx, call.res_id, until=until,
                              patient_id=params.reference("patient", "Patient"),
                              reason=params.string("reason"))


def _close(ctx: Context, call: Invocation) -> service.Done:
    params = _Params(call.parameters, "Location-close")
    assert call.res_id is not None
    return service.do_close(ctx, call.res_id, reason=params.string("reason"))


def _clean(ctx: Context, call: Invocation) -> service.Done:
    _Params(call.parameters, "Location-clean")
    assert call.res_id is not None
    return service.do_clean(ctx, call.res_id)


def _reopen(ctx: Context, call: Invocation) -> service.Done:
    _Params(call.parameters, "Location-reopen")
    assert call.res_id is not None
    return service.do_reopen(ctx, call.res_id)


# --- reading Parameters ---------------------------------------------------------------------


def _where(name: str) -> str:
    return f"Parameters.parameter.where(name='{name}')"


class _Params:
    """An operation's input, checked against its definition: unknown names, repeats beyond
    the definition's max, and missing required parameters are 400s with the path."""

    def __init__(self, parameters: JsonObject, definition_id: str) -> None:
        definition = _DEFINITIONS[definition_id]
        allowed = {p["name"]: p for p in definition["parameter"] if p["use"] == "in"}
        self.items: dict[str, list[JsonObject]] = {}
        given = parameters.get("parameter") or []
        if not isinstance(given, list):
            raise BadRequest("YL-6152", "Parameters.parameter is a list of parameters",
                             expression=("Parameters.parameter",))
        for item in given:
            name = item.get("name") if isinstance(item, dict) else None
            if name not in allowed:
                raise BadRequest("YL-6152", f"${definition['code']} takes "
                                 f"{', '.join(allowed)}; not '{name}'",
                                 expression=(_where(str(name)),))
            self.items.setdefault(str(name), []).append(item)
        for name, spec in allowed.items():
            count = len(self.items.get(name, []))
            if count < spec["min"]:
                raise BadRequest("YL-6153", f"${definition['code']} needs '{name}'",
                                 expression=(_where(name),))
            if spec["max"] != "*" and count > int(spec["max"]):
                raise BadRequest("YL-6154", f"${definition['code']} takes one '{name}'",
                                 expression=(_where(name),))

    def _one(self, name: str, required: bool) -> JsonObject | None:
        found = self.items.get(name)
        if not found:
            if required:
                raise BadRequest("YL-6153", f"The operation needs '{name}'",
                                 expression=(_where(name),))
            return None
        return found[0]

    def reference(self, name: str, res_type: str, *, required: bool = False) -> Any:
        """The id from valueReference `Type/id` (or a valueString/valueId naming it)."""
        item = self._one(name, required)
        if item is None:
            return None
        value = item.get("valueReference", {}).get("reference") \
            if isinstance(item.get("valueReference"), dict) \
            else item.get("valueString", item.get("valueId"))
        if isinstance(value, str):
            kind, slash, res_id = value.partition("/")
            if not slash:
                kind, res_id = res_type, value
            if kind == res_type and res_id and "/" not in res_id:
                return res_id
        raise BadRequest("YL-6155", f"'{name}' must reference a {res_type} "
                         f"(valueReference {res_type}/id)", expression=(_where(name),))

    def string(self, name: str) -> str | None:
        item = self._one(name, False)
        if item is None:
            return None
        value = item.get("valueString", item.get("valueMarkdown"))
        if not isinstance(value, str) or not value.strip():
            raise BadRequest("YL-6156", f"'{name}' is a valueString",
                             expression=(_where(name),))
        return value.strip()

    def code(self, name: str, *, required: bool = False) -> str | None:
        item = self._one(name, required)
        if item is None:
            return None
        value = item.get("valueCode", item.get("valueString"))
        if value is None and isinstance(item.get("valueCoding"), dict):
            value = item["valueCoding"].get("code")
        if value is None and isinstance(item.get("valueCodeableConcept"), dict):
            codings = item["valueCodeableConcept"].get("coding") or [{}]
            first = codings[0] if isinstance(codings, list) and codings else {}
            value = first.get("code") if isinstance(first, dict) else None
        if not isinstance(value, str) or not value:
            raise BadRequest("YL-6157", f"'{name}' is a valueCode (or valueCoding)",
                             expression=(_where(name),))
        return value

    def date(self, name: str) -> date | None:
        item = self._one(name, False)
        if item is None:
            return None
        value = item.get("valueDate")
        try:
            return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 \
                else _bad_date(name)
        except ValueError:
            return _bad_date(name)

    def datetime(self, name: str, *, required: bool = False) -> datetime | None:
        item = self._one(name, required)
        if item is None:
            return None
        value = item.get("valueDateTime", item.get("valueInstant"))
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise BadRequest("YL-6158", f"'{name}' is a valueDateTime with a time and a zone "
                             "(2026-11-24T18:00:00+08:00)", expression=(_where(name),))
        return parsed

    def diagnoses(self) -> tuple[service.Diagnosis, ...]:
        found = []
        for index, item in enumerate(self.items.get("diagnosis", [])):
            where = f"Parameters.parameter.where(name='diagnosis')[{index}]"
            if isinstance(item.get("valueReference"), dict):
                reference = str(item["valueReference"].get("reference", ""))
                kind, _, res_id = reference.partition("/")
                if kind != "Condition" or not res_id or "/" in res_id:
                    raise BadRequest("YL-6159", "A diagnosis reference names a Condition",
                                     expression=(where,))
                found.append(service.Diagnosis(condition_id=res_id, where=where))
                continue
            concept = item.get("valueCodeableConcept")
            codings = [item["valueCoding"]] if isinstance(item.get("valueCoding"), dict) else \
                concept.get("coding", []) if isinstance(concept, dict) else []
            if not isinstance(codings, list):
                codings = []
            icd = [c for c in codings if isinstance(c, dict) and c.get("system") == ICD10
                   and isinstance(c.get("code"), str) and _icd10_form(c["code"])]
            if not icd:
                raise Unprocessable("YL-6160", f"A diagnosis is an ICD-10 code ({ICD10}, "
                                    "e.g. I21.9 or K80.000x004) or a Condition reference",
                                    expression=(where,))
            coding = {k: v for k, v in icd[0].items() if k in ("system", "code", "display")}
            found.append(service.Diagnosis(coding=coding, where=where))
        return tuple(found)


def _bad_date(name: str) -> date:
    raise BadRequest("YL-6161", f"'{name}' is a valueDate (YYYY-MM-DD)",
                     expression=(_where(name),))


def _icd10_form(code: str) -> bool:
    """WHO ICD-10 (A00, I21.9) or a national extension (K80.000, K80.000x004)."""
    if len(code) < 3 or not code[0].isascii() or not code[0].isupper():
        return False
    if not code[1:3].isdigit():
        return False
    rest = code[3:]
    return rest == "" or (rest[0] == "." and len(rest) >= 2 and rest[1:].replace("x", "")
                          .isalnum() and rest.isascii())


# --- the definitions ------------------------------------------------------------------------


def _definition(code: str, res_type: str, *, instance: bool, title: str, description: str,
                params: list[tuple[str, int, str, str, str]], returns: str) -> JsonObject:
    op_id = f"{res_type}-{code}"
    return {
        "resourceType": "OperationDefinition", "id": op_id,
        "url": f"{CANONICAL}/OperationDefinition/{op_id}", "version": "1.0.0",
        "name": "".join(part.title() for part in op_id.split("-")), "title": title,
        "status": "active", "kind": "operation", "code": code, "affectsState": True,
        "description": description, "resource": [res_type], "system": False,
        "type": not instance, "instance": instance,
        "parameter": [
            {"name": name, "use": "in", "min": low, "max": high, "type": kind,
             "documentation": text}
            for name, low, high, kind, text in params
        ] + [{"name": "return", "use": "out", "min": 1, "max": "1", "type": returns,
              "documentation": f"The {returns} as it now is"}],
    }


_DEFINITIONS: dict[str, JsonObject] = {d["id"]: d for d in (
    _definition("admit", "Encounter", instance=False, title="Admit a patient (入院)",
                description="Admits a patient to a bed: an in-progress inpatient Encounter, "
                "the bed occupied. Refused (409) when the bed is taken, closed, being cleaned "
                "or reserved for another patient, or the patient is in hospital already; "
                "(422) when the ward does not take the patient's department, sex or age.",
                params=[
                    ("patient", 1, "1", "Reference", "The Patient (Patient/id)"),
                    ("department", 1, "1", "Reference",
                     "The admitting department (HealthcareService/id)"),
                    ("bed", 1, "1", "Reference", "The bed (Location/id, physicalType bd)"),
                    ("practitioner", 1, "1", "Reference",
                     "The attending physician (Practitioner/id)"),
                    ("diagnosis", 1, "*", "Coding",
                     f"Admitting diagnosis: an ICD-10 Coding ({ICD10}) or a Condition "
                     "reference"),
                    ("admitSource", 0, "1", "code",
                     f"outpatient | emergency | referral (or {ADMIT_SOURCE} codes)"),
                    ("expectedDischarge", 0, "1", "date", "The expected discharge date"),
                ], returns="Encounter"),
    _definition("transfer", "Encounter", instance=True, title="Transfer a patient (转床/转科)",
                description="Moves an inpatient to another bed of the same hospital: across "
                "wards, departments and campuses. Encounter.location keeps every bed with its "
                "period; the old bed goes to housekeeping.",
                params=[
                    ("bed", 1, "1", "Reference", "The new bed (Location/id)"),
                    ("reason", 0, "1", "string", "Why the patient moves"),
                    ("department", 0, "1", "Reference",
                     "The new department, for a transfer between departments"),
                ], returns="Encounter"),
    _definition("discharge", "Encounter", instance=True, title="Discharge a patient (出院)",
                description="Finishes an inpatient stay with its disposition and discharge "
                "diagnoses; the bed goes to housekeeping, then ($clean) free.",
                params=[
                    ("disposition", 1, "1", "code",
                     "home | transfer-hospital | transfer-community | against-advice | died | "
                     "other (离院方式 1-5, 9; or HL7 discharge-disposition codes)"),
                    ("diagnosis", 1, "*", "Coding",
                     "Discharge diagnosis: an ICD-10 Coding or a Condition reference"),
                    ("summary", 0, "1", "string",
                     "The discharge summary (出院小结), kept as a Composition"),
                ], returns="Encounter"),
    _definition("reserve", "Location", instance=True, title="Reserve a bed (预留床位)",
                description="Holds a free bed for a referral or a planned admission until it "
                "expires; only that patient (or, without one, nobody) is admitted to it.",
                params=[
                    ("expires", 1, "1", "dateTime", "When the reservation lapses"),
                    ("patient", 0, "1", "Reference", "The patient it is held for"),
                    ("reason", 0, "1", "string", "Why (a referral, a planned admission)"),
                ], returns="Location"),
    _definition("close", "Location", instance=True, title="Close a bed (停用床位)",
                description="Takes a bed out of use; an occupied bed cannot be closed.",
                params=[("reason", 0, "1", "string", "Why the bed is closed")],
                returns="Location"),
    _definition("clean", "Location", instance=True, title="Bed cleaned (清洁完成)",
                description="Housekeeping is done: a bed being cleaned is free again.",
                params=[], returns="Location"),
    _definition("reopen", "Location", instance=True, title="Reopen a bed (重新启用)",
                description="A closed bed back in use, or a reservation cancelled.",
                params=[], returns="Location"),
)}

_OPERATIONS: tuple[tuple[JsonObject, Action], ...] = (
    (_DEFINITIONS["Encounter-admit"], _admit),
    (_DEFINITIONS["Encounter-transfer"], _transfer),
    (_DEFINITIONS["Encounter-discharge"], _discharge),
    (_DEFINITIONS["Location-reserve"], _reserve),
    (_DEFINITIONS["Location-close"], _close),
    (_DEFINITIONS["Location-clean"], _clean),
    (_DEFINITIONS["Location-reopen"], _reopen),
)


def definitions() -> tuple[JsonObject, ...]:
    return tuple(_DEFINITIONS.values())
