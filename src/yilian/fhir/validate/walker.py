"""The walk of one JSON resource against the compiled tables, collecting issues."""

from __future__ import annotations

from typing import Any, Final

from yilian.fhir.validate import datatypes
from yilian.fhir.validate.compiler import Schema
from yilian.fhir.validate.contained import (
    LocalRef,
    rules_of_contained,
    unreferenced,
    unresolved,
)
from yilian.fhir.validate.issue import Issue
from yilian.fhir.validate.model import ComplexType, Fast, Field, Hook, Kind
from yilian.fhir.validate.primitives import article, describe, show

ABSENT: Final = object()  # a JSON key that is not there (None is JSON null)

FAST_PRIMITIVE: Final = Fast.PRIMITIVE.value
FAST_PRIMITIVES: Final = Fast.PRIMITIVES.value
FAST_OBJECT: Final = Fast.OBJECT.value
FAST_OBJECTS: Final = Fast.OBJECTS.value
HOOK_REFERENCE: Final = Hook.REFERENCE.value
HOOK_EXTENSION: Final = Hook.EXTENSION.value
HOOK_CODEABLE_CONCEPT: Final = Hook.CODEABLE_CONCEPT.value

STRUCTURE = "structure"
REQUIRED = "required"
VALUE = "value"
CODE_INVALID = "code-invalid"


class Walk:
    """One validation: the issues found so far and the open resource contexts."""

    __slots__ = ("issues", "local_refs", "names", "schema")

    def __init__(self, schema: Schema, names: frozenset[str]) -> None:
        self.schema = schema
        self.names = names
        self.issues: list[Issue] = []
        self.local_refs: list[LocalRef] = []  # "#id" references to resolve

    def error(self, code: str, path: str, message: str) -> None:
        self.issues.append(Issue("error", code, path, message))

    def warning(self, code: str, path: str, message: str) -> None:
        self.issues.append(Issue("warning", code, path, message))

    # -- resources ------------------------------------------------------------------------------

    def resource(self, obj: Any, path: str | None, contained: bool = False) -> None:
        """A resource at `path` (None: the root, whose path starts with its resourceType)."""
        if type(obj) is not dict:
            where = path or "Resource"
            self.error(
                STRUCTURE, where, f"{where}: a resource must be a JSON object, got {describe(obj)}"
            )
            return
        rtype = obj.get("resourceType", ABSENT)
        ctype = self.schema.resources.get(rtype) if type(rtype) is str else None
        here = path or (rtype if ctype is not None else "Resource")
        if ctype is None:
            self._bad_resource_type(rtype, here)
            return
        if contained:
            self.issues.extend(rules_of_contained(obj, here))
            self.object(obj, ctype, here)
            return
        outer, self.local_refs = self.local_refs, []
        self.object(obj, ctype, here)
        if self.local_refs:
            self.issues.extend(unresolved(obj, self.local_refs, here))
        if "contained" in obj:
            self.issues.extend(unreferenced(obj, here))
        self.local_refs = outer

    def _bad_resource_type(self, rtype: Any, here: str) -> None:
        where = f"{here}.resourceType"
        if rtype is ABSENT:
            self.error(REQUIRED, where, f"{where}: a resource must have a resourceType")
        elif type(rtype) is not str:
            self.error(STRUCTURE, where, f"{where}: must be a string, got {describe(rtype)}")
        else:
            self.error(
                "not-supported",
                where,
                f"{where}: {show(rtype)} is not a concrete FHIR R4 resource type",
            )

    # -- objects --------------------------------------------------------------------------------

    def object(self, obj: dict[str, Any], ctype: ComplexType, path: str) -> None:
        """The fields of a resource, data type or backbone element (already known to be a dict)."""
        fields = ctype.fields
        choices: dict[str, str] | None = None
        for key, value in obj.items():
            field = fields.get(key)
            if field is None:
                if key != "resourceType" or not ctype.is_resource:
                    self._unknown(key, ctype, path)
                continue
            fast = field.fast
            if fast == FAST_PRIMITIVE:
                if field.check(value) is None:  # type: ignore[misc]
                    codes = field.codes
                    if codes is None or value in codes:
                        continue
                self.primitive(field, value, obj, path)
                continue
            if fast == FAST_OBJECT:
                if type(value) is dict and (len(value) > 1 or (value and "id" not in value)):
                    where = f"{path}.{key}"
                    self.object(value, field.complex, where)  # type: ignore[arg-type]
                    if field.hook:
                        self.hook(field, value, where)
                else:
                    self.complex(field, value, path)
                continue
            if fast == FAST_OBJECTS:
                if type(value) is list and value:
                    where = f"{path}.{key}"
                    ctype_of = field.complex
                    hook = field.hook
                    for index, item in enumerate(value):
                        if type(item) is dict and (len(item) > 1 or (item and "id" not in item)):
                            at = f"{where}[{index}]"
                            self.object(item, ctype_of, at)  # type: ignore[arg-type]
                            if hook:
                                self.hook(field, item, at)
                        else:
                            self.element_or_error(field, item, f"{where}[{index}]")
                else:
                    self.complex(field, value, path)
                continue
            if fast == FAST_PRIMITIVES:
                if type(value) is list and value:
                    check = field.check
                    codes = field.codes
                    for item in value:
                        if check(item) is not None or (codes is not None and item not in codes):  # type: ignore[misc]
                            break
                    else:
                        continue
                self.primitive(field, value, obj, path)
                continue
            if field.choice is not None:
                if choices is None:
                    choices = {}
                first = choices.setdefault(field.choice, field.name)
                if first != field.name:
                    self.error(
                        STRUCTURE,
                        f"{path}.{field.name}",
                        f"{path}.{field.name}: {field.element} is already given as "
                        f"{first}; only one of its types may be present",
                    )
                    continue
            kind = field.kind
            if kind is Kind.PRIMITIVE:
                self.primitive(field, value, obj, path)
            elif kind is Kind.COMPLEX:
                self.complex(field, value, path)
            elif kind is Kind.COMPANION:
                self.companion(fields[field.companion or ""], value, obj, path)
            else:
                self.resources(field, value, path)
        for name, keys in ctype.required:
            for key in keys:
                if key in obj:
                    break
            else:
                where = f"{path}.{name}"
                self.error(
                    REQUIRED,
                    where,
                    f"{where}: missing required element "
                    f"(minimum cardinality {_min_of(ctype, keys)})",
                )

    def _unknown(self, key: str, ctype: ComplexType, path: str) -> None:
        where = f"{path}.{key}"
        hint = ""
        if key.startswith("_") and key[1:] in ctype.fields:
            hint = f" ({key[1:]} is not a primitive, so it has no '_' companion)"
        elif key == "resourceType":
            hint = " (resourceType is only allowed on a resource)"
        self.error(STRUCTURE, where, f"{where}: unknown element '{key}' in {ctype.name}{hint}")

    # -- cardinality of arrays -----------------------------------------------------------------

    def _array(self, field: Field, value: Any, where: str) -> bool:
        """Whether `value` is a usable array for a repeating element (reporting why not)."""
        if type(value) is not list:
            self.error(
                STRUCTURE,
                where,
                f"{where}: {field.element} repeats (max "
                f"{field.max or '*'}), so it must be a JSON array, got {describe(value)}",
            )
            return False
        if not value:
            self.error(STRUCTURE, where, f"{where}: empty arrays are not allowed; omit the element")
            return False
        if field.max is not None and len(value) > field.max:
            self.error(
                STRUCTURE,
                where,
                f"{where}: {len(value)} items, but {field.element} allows at most {field.max}",
            )
        if len(value) < field.min:
            self.error(
                REQUIRED,
                where,
                f"{where}: {len(value)} items, but {field.element} needs at least {field.min}",
            )
        return True

    def _single(self, field: Field, where: str) -> None:
        self.error(
            STRUCTURE, where, f"{where}: {field.element} has max 1, so it must not be an array"
        )

    # -- primitives -----------------------------------------------------------------------------

    def primitive(self, field: Field, value: Any, obj: dict[str, Any], path: str) -> None:
        """Reports what is wrong with a primitive value or array of them."""
        where = f"{path}.{field.name}"
        check = field.check
        assert check is not None
        if not field.many:
            if value is None:
                self.error(STRUCTURE, where, f"{where}: null is only allowed inside arrays")
            elif type(value) is list:
                self._single(field, where)
            else:
                found = check(value)
                if found is not None:
                    self.error(found[0], where, f"{where}: {found[1]}")
                elif field.binding is not None and value not in field.binding.codes:
                    self._not_in_value_set(field, value, where)
            return
        if not self._array(field, value, where):
            return
        extras = obj.get(field.companion) if field.companion else None
        for index, item in enumerate(value):
            at = f"{where}[{index}]"
            if item is None:
                if type(extras) is not list or index >= len(extras) or extras[index] is None:
                    self.error(
                        STRUCTURE,
                        at,
                        f"{at}: null in an array is only allowed when "
                        f"_{field.name} has extensions at the same position",
                    )
                continue
            found = check(item)
            if found is not None:
                self.error(found[0], at, f"{at}: {found[1]}")
            elif field.binding is not None and item not in field.binding.codes:
                self._not_in_value_set(field, item, at)

    def companion(self, field: Field, extras: Any, obj: dict[str, Any], path: str) -> None:
        """The `_name` companion of the primitive `field`: id and extensions of its value(s)."""
        where = f"{path}.{field.name}"
        key = f"{path}._{field.name}"
        value = obj.get(field.name, ABSENT)
        if not field.many:
            has_value = value is not ABSENT and value is not None
            self._companion(field, extras, where, key, has_value)
            return
        if type(extras) is not list:
            self.error(
                STRUCTURE,
                key,
                f"{key}: {field.element} repeats, so _{field.name} must be "
                f"an array aligned with {field.name}, got {describe(extras)}",
            )
            return
        values = value if type(value) is list else None
        if values is not None and len(values) != len(extras):
            self.error(
                STRUCTURE,
                key,
                f"{key}: {len(extras)} items, but {field.name} has "
                f"{len(values)}; the arrays must align (use null to fill)",
            )
        elif value is ABSENT and not self._array(field, extras, key):
            return
        for index, extra in enumerate(extras):
            if extra is None:
                if values is None:  # (null beside a null value is reported with the value)
                    at = f"{where}[{index}]"
                    self.error(STRUCTURE, at, f"{at}: has neither a value nor extensions (ele-1)")
                continue
            has_value = values is not None and index < len(values) and values[index] is not None
            self._companion(field, extra, f"{where}[{index}]", f"{key}[{index}]", has_value)

    def _companion(self, field: Field, extra: Any, where: str, key: str, has_value: bool) -> None:
        """The `_name` object of one primitive value: id and extension only."""
        if type(extra) is not dict:
            problem = "an array" if type(extra) is list else describe(extra)
            self.error(
                STRUCTURE,
                key,
                f"{key}: must be a JSON object with id/extension of {field.name}, got {problem}",
            )
            return
        if not extra:
            self.error(STRUCTURE, key, f"{key}: empty objects are not allowed")
            return
        self.object(extra, self.schema.companion, where)
        if not has_value and "extension" not in extra:
            self.error(STRUCTURE, where, f"{where}: has neither a value nor extensions (ele-1)")

    def _not_in_value_set(self, field: Field, code: Any, where: str) -> None:
        binding = field.binding
        assert binding is not None
        self.error(
            CODE_INVALID,
            where,
            f"{where}: {show(code)} is not in the required value set; "
            f"allowed: {binding.describe()}",
        )

    # -- complex values -------------------------------------------------------------------------

    def complex(self, field: Field, value: Any, path: str) -> None:
        where = f"{path}.{field.name}"
        if not field.many:
            if type(value) is list:
                self._single(field, where)
            else:
                self.element_or_error(field, value, where)
            return
        if self._array(field, value, where):
            for index, item in enumerate(value):
                self.element_or_error(field, item, f"{where}[{index}]")

    def element_or_error(self, field: Field, value: Any, where: str) -> None:
        """One complex value: an object with content, walked, then its type's own rules."""
        if type(value) is not dict:
            self.error(
                STRUCTURE,
                where,
                f"{where}: {article(field.type_code)} must be a JSON object, got {describe(value)}",
            )
            return
        if not value or (len(value) == 1 and "id" in value):
            self.error(
                STRUCTURE,
                where,
                f"{where}: an element must have a value or children "
                "other than id (ele-1); empty objects are not allowed",
            )
            return
        self.object(value, field.complex, where)  # type: ignore[arg-type]
        if field.hook:
            self.hook(field, value, where)

    def hook(self, field: Field, obj: dict[str, Any], where: str) -> None:
        """The rules of the data type itself, beyond its fields."""
        hook = field.hook
        if hook == HOOK_REFERENCE:
            datatypes.reference(field, obj, where, self.names, self.issues, self.local_refs)
        elif hook == HOOK_EXTENSION:
            datatypes.extension(obj, field.complex, where, self.issues)  # type: ignore[arg-type]
        elif field.binding is not None:
            if hook == HOOK_CODEABLE_CONCEPT:
                datatypes.codeable_concept(field.binding, obj, where, self.issues)
            else:
                datatypes.coding(field.binding, obj, where, self.issues)

    def resources(self, field: Field, value: Any, path: str) -> None:
        where = f"{path}.{field.name}"
        contained = field.name == "contained"
        if not field.many:
            if type(value) is list:
                self._single(field, where)
            else:
                self.resource(value, where)
        elif self._array(field, value, where):
            for index, item in enumerate(value):
                self.resource(item, f"{where}[{index}]", contained)


def _min_of(ctype: ComplexType, keys: tuple[str, ...]) -> int:
    return ctype.fields[keys[0]].min
