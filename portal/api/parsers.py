"""The API's one JSON parser: hostile bodies are refused here, before any serializer or service sees them.

Every JSON body is checked once, naming the field: no NUL and no lone surrogate in any string or
key (PostgreSQL cannot store them, and they are never meant), no nesting deeper than
API_MAX_JSON_DEPTH, no number JSON does not allow (NaN, Infinity) or that overflows a float.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from portal.services import audit_reason_note

_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


class ReasonJSONParser(JSONParser):
    """JSON, checked, and a body's "reason" noted for the audit rows of the request (configuration changes too)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                parse_float=self.parse_float,
                parse_int=self.parse_int,
                parse_constant=_refuse_constant,
            )
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {settings.API_MAX_JSON_DEPTH} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        json_check(data)
        if isinstance(data, dict):
            audit_reason_note(data.get("reason"))
        return data

    parse_int = int

    @staticmethod
    def parse_float(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ValueError(f"{text[:40]} is out of range for a number")
        return value


class ExactJSONParser(ReasonJSONParser):
    """JSON whose numbers become Decimal, never float: an amount sent as 12.10 stays 12.10.

    Integers too: a 5,000-digit one is then refused by the field's own range check, naming it,
    where int() would stop the whole body at Python's 4,300-digit limit.
    """

    parse_float = staticmethod(Decimal)
    parse_int = staticmethod(Decimal)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def json_check(data: object) -> None:
    """Refuse, naming the field, a body nested too deep or with a NUL or a lone surrogate in a string or key.

    Iterative, one pass: a 10,000-item feed costs one walk, and no depth can exhaust the stack.
    """
    limit = settings.API_MAX_JSON_DEPTH
    pending: list[tuple[object, str, int]] = [(data, "", 1)]
    while pending:
        value, where, depth = pending.pop()
        if isinstance(value, str):
            if _BAD_TEXT.search(value):
                _refuse(where, "must not contain NUL characters or lone surrogates")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > limit:
            _refuse(where, f"nested deeper than {limit} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if _BAD_TEXT.search(key):
                    _refuse(where or "(body)", "a key must not contain NUL characters or lone surrogates")
                pending.append((item, f"{where}.{key}" if where else key, depth + 1))
        else:
            pending.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))


def _refuse(where: str, message: str) -> None:
    """A 400 keyed by the field's name, with its place in the body (``[3].reference``); also in the
    feeds' own shape ({detail, errors: [{field, message}]}), so a feed's client reads every refusal alike."""
    field = re.split(r"[.\]]", re.sub(r"(\[\d+\])+$", "", where))[-1] or "(body)"
    text = f"{where or 'the body'}: {message}"
    raise ValidationError({field: [text], "detail": text, "errors": [{"field": field, "message": text, "at": where}]})
