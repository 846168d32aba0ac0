"""Rules of particular data types, run once their fields have been walked.

Reference (literal syntax, Reference.type, the allowed target types), Extension (ext-1), and
Coding / CodeableConcept under a required binding. Each appends its issues to `issues`.
"""

from __future__ import annotations

from typing import Any

from yilian.fhir.validate.contained import LocalRef
from yilian.fhir.validate.issue import Issue
from yilian.fhir.validate.model import ComplexType, Field
from yilian.fhir.validate.primitives import show
from yilian.fhir.validate.references import parse_reference
from yilian.fhir.validate.terminology import CodeSet

JsonObject = dict[str, Any]


def _error(issues: list[Issue], code: str, path: str, message: str) -> None:
    issues.append(Issue("error", code, path, f"{path}: {message}"))


def reference(
    field: Field,
    obj: JsonObject,
    where: str,
    names: frozenset[str],
    issues: list[Issue],
    local_refs: list[LocalRef],
) -> None:
    """Reference.reference syntax; agreement with Reference.type; the element's target types.

    Local "#id" references are appended to `local_refs`, to be resolved against
    the resource's contained resources (ref-1) once the whole resource has been walked.
    """
    text = obj.get("reference")
    declared = obj.get("type")
    known = declared if type(declared) is str and declared in names else None
    if type(declared) is str and known is None and ":" not in declared:
        issues.append(
            Issue(
                "warning",
                "value",
                f"{where}.type",
                f"{where}.type: {show(declared)} is not an R4 resource type "
                "(only logical models use absolute URLs here)",
            )
        )
    named, at = known, f"{where}.type"
    if type(text) is str and text:
        parsed = parse_reference(text, names)
        if isinstance(parsed, str):
            _error(issues, "value", f"{where}.reference", parsed)
            return
        if parsed.form == "local":  # "#id"; "#" alone: the container (contained.unresolved)
            local_refs.append(LocalRef(parsed.local_id or "", f"{where}.reference",
                                       field.element, field.targets,
                                       declared if type(declared) is str else None))
        if parsed.type_name is not None:
            # "both SHALL be consistent" (Reference.type): an unknown type too, which no
            # literal reference's type can be.
            if type(declared) is str and declared != parsed.type_name:
                _error(
                    issues,
                    "invalid",
                    f"{where}.type",
                    f"{show(declared)} disagrees with the reference {show(text)}",
                )
                return
            named, at = parsed.type_name, f"{where}.reference"
    targets = field.targets
    if named is not None and targets is not None and named not in targets:
        allowed = ", ".join(sorted(targets))
        _error(issues, "invalid", at, f"{field.element} may refer to {allowed}, not {named}")


def extension(obj: JsonObject, ctype: ComplexType, where: str, issues: list[Issue]) -> None:
    """ext-1: an extension has either a value[x] or nested extensions, not both."""
    fields = ctype.fields
    has_value = False
    for key in obj:
        field = fields.get(key)
        if field is not None and field.choice is not None:
            has_value = True
            break
    if has_value == ("extension" in obj):
        which = "both value[x] and" if has_value else "neither value[x] nor"
        _error(
            issues,
            "invariant",
            where,
            "an extension must have either value[x] or nested "
            f"extensions, not both; it has {which} extension (ext-1)",
        )


def coding(binding: CodeSet, obj: JsonObject, where: str, issues: list[Issue]) -> None:
    """A Coding under a required binding: its system and code are in the value set."""
    system, code = obj.get("system"), obj.get("code")
    if type(system) is not str or type(code) is not str:
        return
    codes = binding.by_system.get(system)
    if codes is None:
        _error(
            issues,
            "code-invalid",
            f"{where}.system",
            f"{show(system)} is not a code system of the required value set {binding.url}",
        )
    elif code not in codes:
        _error(
            issues,
            "code-invalid",
            f"{where}.code",
            f"{show(code)} is not in the required value set; allowed: {binding.describe()}",
        )


def codeable_concept(binding: CodeSet, obj: JsonObject, where: str, issues: list[Issue]) -> None:
    """A CodeableConcept under a required binding.

    Text alone is allowed; a coding in a system of the value set must have one of its codes;
    and when there are codings, at least one must come from the value set.
    """
    codings = obj.get("coding")
    if type(codings) is not list or not codings:
        return
    matched = False
    for index, item in enumerate(codings):
        if type(item) is not dict:
            continue
        system, code = item.get("system"), item.get("code")
        codes = binding.by_system.get(system) if type(system) is str else None
        if codes is None or type(code) is not str:
            continue
        if code not in codes:
            _error(
                issues,
                "code-invalid",
                f"{where}.coding[{index}].code",
                f"{show(code)} is not in the required value set; allowed: {binding.describe()}",
            )
            return
        matched = True
    if not matched:
        systems = ", ".join(sorted(binding.by_system))
        _error(
            issues,
            "code-invalid",
            f"{where}.coding",
            "none of the codings is from the "
            f"required value set {binding.url} (code systems: {systems})",
        )
