"""/ui/inpatient: the bed board (admit, transfer, discharge and bed states from it) and the
census with its charts.

Views parse, call, render: every change goes through the FHIR operations ($admit ...) with
the signed-in user's access, exactly as an integration engine's call would, so the pages can
do nothing the API would refuse. The UI shell (yilian.web) supplies the rendering (layout,
languages) and the signed-in caller (`request.state.access`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from yilian.domains.inpatient import records
from yilian.domains.inpatient import repository as repo
from yilian.domains.inpatient.board import BoardQuery, board
from yilian.domains.inpatient.census import MAX_DAYS, CensusQuery, GroupBy, census
from yilian.domains.inpatient.census_days import bring_up_to_date
from yilian.domains.inpatient.codes import ICD10, AdmitSource, BedStatus, Disposition
from yilian.domains.inpatient.endpoints import check_census_access, check_census_day
from yilian.domains.inpatient.tables import inpatient_bed
from yilian.errors import BadRequest
from yilian.fhir.access import Access
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.store import sql as store
from yilian.kit import jsonfmt
from yilian.kit.clock import DISPLAY_ZONE, to_instant, utcnow
from yilian.kit.db import read_transaction
from yilian.kit.forms import FormError, parse_form

TEMPLATES = Path(__file__).parent / "templates"
JsonObject = dict[str, Any]
Render = Callable[..., Response]
Fhir = Callable[[FhirRequest], FhirResponse]
Handler = Callable[[Request], Awaitable[Response]]
Audit = Callable[[Request, Access, tuple[str, ...]], None]


@cache
def diagnosis_choices() -> tuple[JsonObject, ...]:
    """The curated ICD-10 diagnoses with Chinese titles the forms offer (any valid code may
    be typed)."""
    data = json.loads(resources.files("yilian.domains.inpatient").joinpath(
        "data/diagnoses.json").read_text(encoding="utf-8"))
    seen: dict[str, JsonObject] = {}
    for items in data["specialties"].values():
        for item in items:
            seen.setdefault(item["code"], {"code": item["code"], "zh": item["zh"],
                                           "en": item["en"]})
    return tuple(sorted(seen.values(), key=lambda d: str(d["code"])))


class InpatientViews:
    def __init__(self, engine: Engine, render: Render, fhir: Fhir, audit: Audit) -> None:
        self.engine = engine
        self.render = render
        self.fhir = fhir
        self.audit = audit  # who saw which patients on a board

    def routes(self) -> list[tuple[str, Handler, list[str]]]:
        return [
            ("/board", self.board_page, ["GET"]),
            ("/beds/{bed}/admit", self.admit, ["GET", "POST"]),
            ("/beds/{bed}/state", self.bed_state, ["GET", "POST"]),
            ("/encounters/{encounter}/transfer", self.transfer, ["GET", "POST"]),
            ("/encounters/{encounter}/discharge", self.discharge, ["GET", "POST"]),
            ("/patients", self.patients, ["GET"]),
            ("/census", self.census_page, ["GET"]),
        ]

    # --- the board ------------------------------------------------------------------------

    async def board_page(self, request: Request) -> Response:
        access: Access = request.state.access
        campuses = await run_in_threadpool(self._campuses, access)
        campus = request.query_params.get("campus") or (campuses[0]["id"] if campuses else "")
        status_text = request.query_params.get("status") or None
        status = _status(status_text)
        ward = request.query_params.get("ward") or None
        shown = await run_in_threadpool(self._board, access, campus, ward, status) \
            if campus else None
        self._audit_board(request, access, shown)
        values = {"board": shown, "campuses": campuses, "campus": campus, "ward": ward,
                  "status": status_text or "", "statuses": list(BedStatus), "message": None,
                  "wards": _ward_choices(shown)}
        fragment = request.headers.get("hx-request") and \
            request.headers.get("hx-target") == "board"
        return self.render(request, "inpatient/_board.html" if fragment
                           else "inpatient/board.html", values)

    def _audit_board(self, request: Request, access: Access, shown: JsonObject | None) -> None:
        patients = tuple(f"Patient/{b['stay']['patient']}" for w in (shown or {}).get("wards", [])
                         for b in w["beds"] if "stay" in b)
        self.audit(request, access, patients)

    def _board(self, access: Access, campus: str, ward: str | None,
               status: BedStatus | None) -> JsonObject:
        with read_transaction(self.engine) as conn:
            return board(conn, access, BoardQuery(campus, ward, status), utcnow())

    def _campuses(self, access: Access) -> list[JsonObject]:
        """The campuses with beds the caller's roles reach (all, for an administrator)."""
        bed = inpatient_bed.c
        query = select(bed.campus_id, bed.hospital_id).distinct().where(
            bed.campus_id.is_not(None))
        if access.organizations:
            query = query.where(bed.hospital_id.in_(access.organizations)
                                | bed.campus_id.in_(access.organizations))
        with read_transaction(self.engine) as conn:
            pairs = conn.execute(query).all()
            ids = [p[0] for p in pairs] + [p[1] for p in pairs if p[1]]
            names = {i: found.get("name", i)
                     for i, found in repo.read_many(conn, "Organization", ids).items()}
        return sorted(({"id": c, "hospital": h, "name": names.get(c, c),
                        "hospital_name": names.get(h, h)} for c, h in pairs),
                      key=lambda c: (_natural(str(c["hospital"])), str(c["id"])))

    async def _after(self, request: Request, answer: FhirResponse,
                     done: dict[str, str]) -> Response:
        """The board again, with what happened (or why not) above it."""
        access: Access = request.state.access
        form = await form_of(request)
        campus = str(form.get("campus", ""))
        ward = str(form.get("ward", "")) or None
        status_text = str(form.get("status", "")) or None
        shown = await run_in_threadpool(self._board, access, campus, ward, _status(status_text))
        self._audit_board(request, access, shown)
        ok = answer.status < 400
        message = {"ok": ok, "text": done if ok else _refusal(answer)}
        return self.render(request, "inpatient/_board.html", {
            "board": shown, "campus": campus, "ward": ward, "status": status_text or "",
            "message": message, "wards": _ward_choices(shown)},
            status=200)

    # --- admit, transfer, discharge, bed states ---------------------------------------------

    async def admit(self, request: Request) -> Response:
        bed_id = request.path_params["bed"]
        if request.method == "GET":
            return await self._admit_form(request, bed_id)
        form = await form_of(request)
        parameters = [
            _reference("patient", "Patient", form.get("patient")),
            _reference("department", "HealthcareService", form.get("department")),
            _reference("bed", "Location", bed_id),
            _reference("practitioner", "Practitioner", form.get("practitioner")),
            _diagnosis(form),
            {"name": "admitSource", "valueCode": str(form.get("admitSource") or "outpatient")},
        ]
        if form.get("expectedDischarge"):
            parameters.append({"name": "expectedDischarge",
                               "valueDate": str(form["expectedDischarge"])})
        answer = await self._operation(request, "Encounter/$admit", parameters)
        return await self._after(request, answer, _done("admitted"))

    async def _admit_form(self, request: Request, bed_id: str) -> Response:
        access: Access = request.state.access
        department = await run_in_threadpool(self._department_of, bed_id)
        doctors = await run_in_threadpool(self._doctors, access, department)
        return self.render(request, "inpatient/_admit_form.html", {
            "bed": bed_id, "bed_name": request.query_params.get("name", bed_id),
            "department": department, "doctors": doctors, "sources": list(AdmitSource),
            "diagnoses": diagnosis_choices(), **_keep(request.query_params)})

    async def transfer(self, request: Request) -> Response:
        encounter = request.path_params["encounter"]
        if request.method == "GET":
            access: Access = request.state.access
            campus = request.query_params.get("campus", "")
            free = await run_in_threadpool(self._board, access, campus, None, BedStatus.FREE)
            return self.render(request, "inpatient/_transfer_form.html", {
                "encounter": encounter, "free": free, **_keep(request.query_params),
                "patient": request.query_params.get("patient_name", "")})
        form = await form_of(request)
        parameters = [_reference("bed", "Location", form.get("bed"))]
        if form.get("reason"):
            parameters.append({"name": "reason", "valueString": str(form["reason"])})
        answer = await self._operation(request, f"Encounter/{encounter}/$transfer", parameters)
        return await self._after(request, answer, _done("transferred"))

    async def discharge(self, request: Request) -> Response:
        encounter = request.path_params["encounter"]
        if request.method == "GET":
            return self.render(request, "inpatient/_discharge_form.html", {
                "encounter": encounter, "dispositions": list(Disposition),
                "diagnoses": diagnosis_choices(), **_keep(request.query_params),
                "patient": request.query_params.get("patient_name", "")})
        form = await form_of(request)
        parameters = [{"name": "disposition", "valueCode": str(form.get("disposition", ""))},
                      _diagnosis(form)]
        if str(form.get("summary", "")).strip():
            parameters.append({"name": "summary", "valueString": str(form["summary"])})
        answer = await self._operation(request, f"Encounter/{encounter}/$discharge",
                                       parameters)
        return await self._after(request, answer, _done("discharged"))

    async def bed_state(self, request: Request) -> Response:
        bed_id = request.path_params["bed"]
        if request.method == "GET":  # the reason (and, to reserve, how long and for whom)
            action = request.query_params.get("action", "")
            if action not in ("close", "reserve"):
                raise BadRequest("YL-6202", f"No bed action '{action}'", expression=("action",))
            return self.render(request, "inpatient/_state_form.html", {
                "bed": bed_id, "action": action, "bed_name": request.query_params.get("name"),
                **_keep(request.query_params)})
        form = await form_of(request)
        action = str(form.get("action", ""))
        if action not in ("clean", "close", "reopen", "reserve"):
            raise BadRequest("YL-6202", f"No bed action '{action}'", expression=("action",))
        parameters: list[JsonObject] = []
        if action in ("close", "reserve") and str(form.get("reason", "")).strip():
            parameters.append({"name": "reason", "valueString": str(form["reason"])})
        if action == "reserve":
            text = str(form.get("hours") or "24")
            hours = int(text) if text.isascii() and text.isdigit() and len(text) < 5 else 24
            parameters.append({"name": "expires", "valueDateTime": to_instant(
                utcnow() + timedelta(hours=max(1, min(hours, 24 * 14))))})
            if form.get("patient"):
                parameters.append(_reference("patient", "Patient", form.get("patient")))
        answer = await self._operation(request, f"Location/{bed_id}/${action}", parameters)
        return await self._after(request, answer, _done(action))

    async def patients(self, request: Request) -> Response:
        """Patients matching a name, a resident ID or an MRN, to pick for an admission."""
        text = request.query_params.get("q", "").strip()
        found: list[JsonObject] = []
        if len(text) >= 1:
            by = "identifier" if any(c.isdigit() for c in text) else "name"
            answer = await run_in_threadpool(self.fhir, FhirRequest(
                "GET", "Patient", query=((by, text), ("_count", "10")),
                access=request.state.access, source=_address(request)))
            bundle = _json(answer)
            found = [e["resource"] for e in bundle.get("entry", [])
                     if e.get("resource", {}).get("resourceType") == "Patient"]
        return self.render(request, "inpatient/_patients.html", {
            "patients": [_patient_choice(p) for p in found], "q": text})

    async def _operation(self, request: Request, path: str, parameters: list[JsonObject]
                         ) -> FhirResponse:
        body = jsonfmt.dumps({"resourceType": "Parameters", "parameter": parameters})
        return await run_in_threadpool(self.fhir, FhirRequest(
            "POST", path, body=body, content_type="application/fhir+json",
            headers={"content-type": "application/fhir+json"},
            access=request.state.access, source=_address(request)))

    def _department_of(self, bed_id: str) -> JsonObject | None:
        with read_transaction(self.engine) as conn:
            department_id = conn.execute(select(inpatient_bed.c.department_id).where(
                inpatient_bed.c.bed_id == bed_id)).scalar()
            if not department_id:
                return None
            stored = store.read_current(conn, "HealthcareService", department_id)
        if stored is None or stored.content is None:
            return None
        found: JsonObject = jsonfmt.loads(stored.content)
        return found

    def _doctors(self, access: Access, department: JsonObject | None) -> list[JsonObject]:
        if department is None:
            return []
        answer = self.fhir(FhirRequest("GET", "PractitionerRole", query=(
            ("service", f"HealthcareService/{department['id']}"),
            ("_include", "PractitionerRole:practitioner"), ("_count", "50")), access=access))
        bundle = _json(answer)
        people = {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", [])
                  if e.get("resource", {}).get("resourceType") == "Practitioner"}
        doctors = []
        for entry in bundle.get("entry", []):
            role = entry.get("resource", {})
            if role.get("resourceType") != "PractitionerRole":
                continue
            codes = [c.get("code") for cc in role.get("code", []) for c in cc.get("coding", [])]
            person_id = str(role.get("practitioner", {}).get("reference", "")).split("/")[-1]
            if "nurse" in codes or person_id not in people:
                continue
            doctors.append({"id": person_id, "name": _person_name(people[person_id])})
        return doctors

    # --- the census -----------------------------------------------------------------------

    async def census_page(self, request: Request) -> Response:
        access: Access = request.state.access
        params = request.query_params
        campuses = await run_in_threadpool(self._campuses, access)
        hospitals = [{"id": h, "name": n} for h, n in dict(
            (str(c["hospital"]), str(c["hospital_name"])) for c in campuses).items()]
        today = utcnow().astimezone(DISPLAY_ZONE).date()
        last = _date(params.get("to"), "to") or today
        first = _date(params.get("from"), "from") or last - timedelta(days=29)
        if first > last or (last - first).days >= MAX_DAYS:
            raise BadRequest("YL-6203", f"Choose 1 to {MAX_DAYS} days, 'from' before 'to'",
                             expression=("from",))
        by = GroupBy(params["by"]) if params.get("by") in GroupBy._value2member_map_ \
            else GroupBy.WARD if params.get("campus") else GroupBy.CAMPUS
        hospital = params.get("hospital") or (hospitals[0]["id"] if hospitals else None)
        query = CensusQuery(first, last, by, hospital=None if params.get("campus") else hospital,
                            campus=params.get("campus") or None)
        counted = await run_in_threadpool(self._census, access, query)
        return self.render(request, "inpatient/census.html", {
            "census": counted, "chart": _chart(counted["days"]), "hospitals": hospitals,
            "hospital": hospital, "campuses": campuses, "campus": params.get("campus", ""),
            "by": by.value, "first": first.isoformat(), "last": last.isoformat(),
            "groupings": [g.value for g in GroupBy]})

    def _census(self, access: Access, query: CensusQuery) -> JsonObject:
        now = utcnow()
        with read_transaction(self.engine) as conn:
            check_census_access(conn, access, query)
        bring_up_to_date(self.engine, now)  # for a caller who may see the census only
        with read_transaction(self.engine) as conn:
            return census(conn, query, now)


# --- helpers ----------------------------------------------------------------------------------

_DONE = {"admitted": ("已入院", "Admitted"), "transferred": ("已转床", "Transferred"),
         "discharged": ("已出院", "Discharged"), "clean": ("已清洁，床位空闲", "Cleaned: bed free"),
         "close": ("床位已关闭", "Bed closed"), "reopen": ("床位已启用", "Bed reopened"),
         "reserve": ("床位已预留", "Bed reserved")}


def _done(key: str) -> dict[str, str]:
    zh, en = _DONE[key]
    return {"zh": zh, "en": en}


def _natural(text: str) -> tuple[str, int]:
    """h2 before h10."""
    head = text.rstrip("0123456789")
    tail = text[len(head):]
    return head, int(tail) if tail else -1


def _status(text: str | None) -> BedStatus | None:
    return BedStatus(text) if text is not None and text in BedStatus._value2member_map_ \
        else None


def _keep(params: Any) -> JsonObject:
    """The board's filters, carried through a form so the board comes back the same."""
    return {"campus": params.get("campus", ""), "ward": params.get("ward", ""),
            "status": params.get("status", "")}


def _ward_choices(shown: JsonObject | None) -> list[JsonObject]:
    return [{"id": w["id"], "name": w["name"]} for w in (shown or {}).get("wards", [])]


def _reference(name: str, res_type: str, value: Any) -> JsonObject:
    return {"name": name, "valueReference": {"reference": f"{res_type}/{value or ''}"}}


def _diagnosis(form: dict[str, str]) -> JsonObject:
    code = str(form.get("diagnosis", "")).strip().split(" ")[0].upper()
    names = {d["code"]: d["zh"] for d in diagnosis_choices()}
    coding = {"system": ICD10, "code": code}
    if code in names:
        coding["display"] = names[code]
    return {"name": "diagnosis", "valueCoding": coding}


def _json(answer: FhirResponse) -> JsonObject:
    """The answer as plain JSON (search Bundles embed stored resources as raw fragments)."""
    found: JsonObject = jsonfmt.loads(answer.body_bytes() or b"{}")
    return found


# What a ward clerk reads first when an operation refuses (the OperationOutcome's English
# details follow): by the stable error code of the refusal.
_REFUSALS_ZH = {
    "YL-6101": "您的角色无权操作该医院的床位", "YL-6102": "所选患者、科室或医师不存在",
    "YL-6103": "床位不存在", "YL-6104": "所选位置不是床位", "YL-6105": "床位未启用",
    "YL-6108": "该患者当前不在院", "YL-6110": "入院需填写入院诊断", "YL-6111": "科室不属于该医院",
    "YL-6112": "科室已停用", "YL-6113": "该病区不收治此科室的患者", "YL-6114": "该病区限制患者性别",
    "YL-6115": "该病区按年龄收治，患者缺少出生日期", "YL-6116": "患者年龄不符合该病区收治范围",
    "YL-6117": "该床位已为其他患者预留", "YL-6118": "患者已在院，请转床或先办理出院",
    "YL-6119": "床位当前不可用", "YL-6120": "患者已在该床位",
    "YL-6121": "不能转至其他医院的床位，请办理出院并转诊",
    "YL-6130": "出院需填写出院诊断", "YL-6140": "预留到期时间须晚于现在",
    "YL-6141": "床位已预留，请先取消预留", "YL-6142": "该床位不在清洁中",
    "YL-6143": "只有停用或预留的床位可以重新启用", "YL-6151": "离院方式无效",
    "YL-6153": "缺少必填项", "YL-6155": "所选项无效", "YL-6160": "诊断须为 ICD-10 编码",
}


def _refusal(answer: FhirResponse) -> dict[str, str]:
    outcome = _json(answer)
    issues = outcome.get("issue") or [{}]
    english = str(issues[0].get("diagnostics", f"HTTP {answer.status}"))
    code = english[1:8] if english.startswith("[YL-") else ""
    chinese = _REFUSALS_ZH.get(code)
    return {"zh": f"{chinese}。{english}" if chinese else english, "en": english}


def _person_name(person: JsonObject) -> str:
    return records.patient_name(person) or str(person.get("id"))


def _patient_choice(patient: JsonObject) -> JsonObject:
    return {"id": patient.get("id"), "name": _person_name(patient),
            "gender": patient.get("gender"), "birthDate": patient.get("birthDate"),
            "identifier": next((i.get("value") for i in patient.get("identifier", [])
                                if "mrn" in str(i.get("system", ""))), None)}


def _date(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise BadRequest("YL-6204", f"'{name}' is a date (YYYY-MM-DD)",
                         expression=(name,)) from error
    check_census_day(day, name)
    return day


def _chart(days: list[JsonObject], width: int = 720, height: int = 180) -> JsonObject:
    """Coordinates for the census chart (an SVG the template draws): the daily census as a
    line, admissions and discharges as bars."""
    if not days:
        return {"width": width, "height": height, "line": "", "bars": [], "ticks": []}
    top = max(max(d["inHospital"] for d in days), 1)
    events_top = max(max(d.get("admissions", 0), d.get("discharges", 0)) for d in days) or 1
    step = width / max(len(days), 1)
    scale = (height - 20) / top
    line = " ".join(f"{step * i + step / 2:.1f},{height - d['inHospital'] * scale:.1f}"
                    for i, d in enumerate(days))
    bars = []
    for i, d in enumerate(days):
        for offset, kind in ((0.15, "admissions"), (0.5, "discharges")):
            h = d.get(kind, 0) / events_top * 60
            bars.append({"x": round(step * i + step * offset, 1), "y": round(height - h, 1),
                         "w": round(step * 0.32, 1), "h": round(h, 1), "kind": kind,
                         "title": f"{d['date']} {kind} {d.get(kind, 0)}"})
    every = max(1, len(days) // 8)
    ticks = [{"x": round(step * i + step / 2, 1), "label": d["date"][5:]}
             for i, d in enumerate(days) if i % every == 0]
    return {"width": width, "height": height, "line": line, "bars": bars, "ticks": ticks,
            "top": top}


def _address(request: Request) -> str:
    return request.client.host if request.client else ""



async def form_of(request: Request) -> dict[str, str]:
    try:
        return parse_form(await request.body(), request.headers.get("content-type"))
    except FormError as error:
        raise BadRequest("YL-6205", f"The form cannot be read: {error}") from error
