"""Pieces the engines' API views share."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError


def api_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class ServiceSaveMixin:
    """Serializers save through services, which validate again: their errors are 400s too."""

    def perform_create(self, serializer) -> None:
        try:
            serializer.save()
        except DjangoValidationError as exc:
            raise api_errors(exc) from None

    def perform_update(self, serializer) -> None:
        self.perform_create(serializer)


def _expected_json_type(field: serializers.Field) -> type | tuple[type, ...] | None:
    """The JSON type a writable field takes as published (DRF itself also takes 5 for "5" and "yes" for true)."""
    if isinstance(field, serializers.BooleanField):
        return bool
    if isinstance(field, serializers.IntegerField):
        return int
    if isinstance(field, serializers.ChoiceField):
        return str if all(isinstance(key, str) for key in field.choices) else None
    if isinstance(field, serializers.CharField | serializers.DateField | serializers.TimeField | serializers.DateTimeField):
        return str
    if isinstance(field, serializers.SlugRelatedField):
        return str
    if isinstance(field, serializers.ListField | serializers.ListSerializer | serializers.ManyRelatedField):
        return list
    if isinstance(field, serializers.DictField | serializers.Serializer):
        return dict
    return None


def json_type_errors(fields, data) -> dict[str, list[str]]:
    """Each field sent with the wrong JSON type, named (lists and nested objects item by item)."""
    errors: dict[str, list[str]] = {}
    for name, field in fields.items():
        if field.read_only or name not in data or data[name] is None:
            continue
        value = data[name]
        expected = _expected_json_type(field)
        if expected is not None and (not isinstance(value, expected) or (isinstance(value, bool) and expected is int)):
            errors[name] = [f"must be {JSON_NAMES.get(expected, 'of another type')}, not {type(value).__name__}"]
            continue
        child = getattr(field, "child", None) or getattr(field, "child_relation", None)
        if isinstance(value, list) and child is not None:
            for index, item in enumerate(value):
                problems = json_type_errors({"item": child}, {"item": item})
                if problems:
                    errors[name] = [f"[{index}] {key}: {' '.join(why)}" for key, why in problems.items()]
                    break
        elif isinstance(value, dict) and isinstance(field, serializers.Serializer):
            problems = json_type_errors(field.fields, value)
            if problems:
                errors[name] = [f"{key}: {' '.join(why)}" for key, why in problems.items()]
    return errors


JSON_NAMES = {bool: "true or false", int: "a whole number", str: "a string", list: "a list", dict: "an object"}


class JsonTypesMixin:
    """Input serializers take each field in the JSON type the schema publishes: "5" is no integer, 0 no boolean, 7 no text."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = json_type_errors(self.fields, data)
            if errors:
                raise ValidationError(errors)
        return super().to_internal_value(data)
