"""Field types shared by the configuration models, each with a clear error and a hint."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from engine.durations import DURATION_HINT, format_duration, parse_duration


class Frozen(BaseModel):
    """Base of every configuration model: immutable, and a typo is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def ripen_error(message: str, hint: str | None = None) -> PydanticCustomError:
    """A validation error whose text and hint reach the marketer unchanged."""
    return PydanticCustomError("ripen", "{message}", {"message": message, "hint": hint})


ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
ID_HINT = "ids use lowercase letters, digits and dashes, like monika-marketing"

#: Identifier of a persona, content item, journey, step, rep or endpoint.
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=80)]

CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
CODE_HINT = "codes use lowercase letters, digits and underscores, like no_budget"
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=60)]

ENV_PATTERN = r"^[A-Z][A-Z0-9_]*$"
ENV_HINT = "name an environment variable in capitals, like RIPEN_WEBHOOK_SECRET_CRM"

TEMPLATE_PATTERN = r"^[a-z0-9_][a-z0-9_/-]*$"
TEMPLATE_HINT = (
    "name a template without its suffix, like content_offer for "
    "templates/email/content_offer.html.j2 and .txt.j2"
)
TemplateName = Annotated[str, StringConstraints(pattern=TEMPLATE_PATTERN, max_length=120)]

#: Hints for the patterns above, used when a value does not match.
PATTERN_HINTS = {
    ID_PATTERN: ("is not a valid id", ID_HINT),
    CODE_PATTERN: ("is not a valid code", CODE_HINT),
    ENV_PATTERN: ("is not an environment variable name", ENV_HINT),
    TEMPLATE_PATTERN: ("is not a template name", TEMPLATE_HINT),
}


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ripen_error(f"{value!r} is not a duration", DURATION_HINT)
    if isinstance(value, int):
        raise ripen_error(f"{value} has no unit", DURATION_HINT)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ripen_error(str(exc), DURATION_HINT) from None


DURATION_PATTERN = r"^\s*[1-9]\d*\s*[mhdw]\s*$"
#: A positive duration written as 90m, 12h, 3d or 2w.
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, when_used="json"),  # stored versions read back as YAML
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN,
                    "description": "a duration such as 90m, 12h, 3d or 2w"}),
]

EventType = Literal[
    "click",
    "download",
    "open",
    "visit",
    "form_submitted",
    "webinar_registered",
    "webinar_attended",
    "reply",
    "contact_request",
]

ContentType = Literal[
    "article",
    "blog_post",
    "case_study",
    "checklist",
    "demo",
    "ebook",
    "event",
    "guide",
    "infographic",
    "newsletter",
    "podcast",
    "study",
    "tool",
    "video",
    "webinar",
    "whitepaper",
]

FitGrade = Literal["A", "B", "C", "D"]

def _header_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ripen_error(f"expected text, got {value!r}", 'quote the value: "…"')
    if "\r" in value or "\n" in value:
        raise ripen_error("a mail header cannot contain a line break",
                          "write it on one line (line breaks in headers let attackers add "
                          "headers)")
    return value


#: Text that ends up in a mail header (sender name, subject): no CR or LF, ever.
HeaderText = Annotated[str, BeforeValidator(_header_text),
                       WithJsonSchema({"type": "string", "pattern": "^[^\r\n]*$"})]

_LANGUAGE = re.compile(r"^[a-z]{2}$")


def _language(value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ripen_error(f"{value!r} is not a language code",
                          "use a two-letter code like de or en")
    return value


Language = Annotated[str, BeforeValidator(_language),
                     WithJsonSchema({"type": "string", "pattern": "^[a-z]{2}$"})]
