"""Fields every engine's API shares: one reading of an instant, for bodies and filters alike."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from portal import clock
from portal.lib.times import iso_utc


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An ISO-8601 instant with its offset (Z, +02:00), answered in UTC; a naive time is refused."""

    default_error_messages = {"invalid": "{reason}"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", reason="must be an ISO-8601 date-time string with an offset, e.g. 2026-03-02T10:00:00Z")
        try:
            return clock.parse_instant(data)
        except ValueError as exc:
            self.fail("invalid", reason=str(exc))

    def to_representation(self, value):
        return iso_utc(value)


class InstantFormField(forms.Field):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return clock.parse_instant(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class InstantFilter(django_filters.IsoDateTimeFilter):
    """A time filter read like every instant the API takes (an offset beyond +-15:59 is a 400, not a database error)."""

    field_class = InstantFormField


class StrictBooleanFormField(forms.Field):
    """true/false (or 1/0): anything else is a 400, where Django's NullBooleanField would quietly filter nothing."""

    WORDS = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        word = str(value).strip().lower()
        if word not in self.WORDS:
            raise forms.ValidationError(f"{str(value)[:20]!r} is not true or false")
        return self.WORDS[word]


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanFormField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (an id, a step): 0.5 is a 400, where NumberFilter would look for it."""

    field_class = forms.IntegerField


class StrictFilterBackend(DjangoFilterBackend):
    """A filter given with no value is refused, naming it: ``?until=`` or ``?status=`` means nothing, and
    silently listing everything instead would hide the caller's mistake. Text filters may be empty."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            empty = [
                name for name, filter_ in filterset.filters.items()
                if request.query_params.get(name) == "" and not isinstance(filter_, django_filters.CharFilter | django_filters.ModelChoiceFilter)
            ]
            if empty:
                raise ValidationError({name: ["empty: give a value or leave the filter out"] for name in empty})
        return filterset


WALL_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


@extend_schema_field({"type": "string", "pattern": WALL_TIME, "example": "07:00:00"})
class WallTimeField(serializers.TimeField):
    """A time of day on a calendar group's own clock, hh:mm[:ss]: no offset (the group's time zone says where)."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not re.fullmatch(WALL_TIME, value):
            self.fail("invalid", format="hh:mm[:ss] without an offset (the calendar group's time zone applies)")
        return super().to_internal_value(value)
