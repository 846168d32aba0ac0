"""HTML forms (application/x-www-form-urlencoded), parsed without python-multipart: the
pages send nothing else, and a form larger than `MAX_FORM_BYTES` is not a form of ours."""

from __future__ import annotations

from urllib.parse import parse_qsl

MAX_FORM_BYTES = 64 * 1024


class FormError(ValueError):
    pass


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """The fields of a form (the last value of a repeated name)."""
    if not body:
        return {}
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FormError("send the form as application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise FormError(f"a form is at most {MAX_FORM_BYTES // 1024} KB")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as error:
        raise FormError("the form is not UTF-8") from error
