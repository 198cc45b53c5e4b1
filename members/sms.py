"""Text messages to members' phones, through a pluggable backend chosen by HUIYUAN_SMS_BACKEND.

A backend is any class whose instances have `send(phone_e164, text)`; it raises SmsError (or any exception)
when the provider refuses or cannot be reached. A real provider's backend wraps its HTTP API in that one
method. The console backend (the default) prints messages for development; the local-memory backend keeps
them in `outbox` for tests.
"""

import sys
import threading
from dataclasses import dataclass
from typing import Protocol, TextIO

import phonenumbers
from django.conf import settings
from django.utils.module_loading import import_string


class SmsError(Exception):
    """The message could not be handed to the provider."""


class SmsBackend(Protocol):
    def send(self, phone_e164: str, text: str) -> None: ...


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str


def mask_phone(phone_e164: str) -> str:
    """+86 138****8000: enough to tell numbers apart, not enough to be personal data in a console or log."""
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return "****"
    national = str(number.national_number)
    middle = f"{national[:3]}****{national[-4:]}" if len(national) >= 8 else "****"
    return f"+{number.country_code} {middle}"


class ConsoleSmsBackend:
    """Development: writes each message to standard output (the runserver console), the number masked."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, phone_e164: str, text: str) -> None:
        self.stream.write(f"SMS to {mask_phone(phone_e164)}: {text}\n")
        self.stream.flush()


outbox: list[SmsMessage] = []
_outbox_lock = threading.Lock()


class LocmemSmsBackend:
    """Tests: messages are appended to members.sms.outbox."""

    def send(self, phone_e164: str, text: str) -> None:
        with _outbox_lock:
            outbox.append(SmsMessage(phone=phone_e164, text=text))


def sms_backend() -> SmsBackend:
    backend: SmsBackend = import_string(settings.HUIYUAN_SMS_BACKEND)()
    return backend


def sms_send(*, phone_e164: str, text: str) -> None:
    """Send one text through the configured backend. Raises SmsError when it fails."""
    try:
        sms_backend().send(phone_e164, text)
    except SmsError:
        raise
    except Exception as exc:  # a provider's own errors become one kind the callers handle
        raise SmsError(type(exc).__name__) from exc
