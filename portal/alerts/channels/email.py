"""The ``email`` channel: comma-separated addresses, through Django's e-mail framework."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

from portal.alerts.channels import Undeliverable

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def addresses(target: str) -> list[str]:
    return [address.strip() for address in target.split(",") if address.strip()]


def check(target: str) -> list[str]:
    found = addresses(target)
    if not found:
        return ["give at least one e-mail address (several: comma separated)"]
    errors = []
    for address in found:
        try:
            validate_email(address)
        except ValidationError:
            errors.append(f"{address!r} is not an e-mail address")
    return errors


def shown(target: str) -> str:
    return target


def message_text(body: dict) -> tuple[str, str]:
    subject = f"[portal] {body['event']}: {body['kind']} {body['subject']}"
    lines = [
        body["summary"],
        "",
        f"event: {body['event']}",
        f"state: {body['state']}",
        f"opened at: {body['opened_at']}",
        f"at: {body['at']}",
        "",
        body["url"],
    ]
    return subject, "\n".join(str(line) for line in lines)


def send(channel, payload: dict) -> None:
    # SMTP whenever EMAIL_HOST is set, even where another backend is configured (DEBUG, tests).
    connection = get_connection(SMTP_BACKEND if settings.EMAIL_HOST else None)
    subject, text = message_text(payload["body"])
    message = EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, addresses(channel.target), connection=connection)
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise Undeliverable(f"every recipient was refused: {', '.join(exc.recipients)}") from None
