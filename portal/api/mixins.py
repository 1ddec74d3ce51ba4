"""Pieces the engines' API views share."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
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
