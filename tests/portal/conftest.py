"""Portal sign-in fixtures: texts land in members.sms.outbox, and each test counts rate limits in a cache of
its own (a shared Redis would mix the counts of tests running side by side)."""

import re
import uuid
from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse

from members import portal_auth, sms
from members.models import Member
from tests.factories import MemberFactory

PHONE = "+8613800138000"
TYPED = "138 0013 8000"  # as a member types it
OTHER_PHONE = "+8613900139000"


@pytest.fixture(autouse=True)
def _portal_settings(settings):
    settings.HUIYUAN_SMS_BACKEND = "members.sms.LocmemSmsBackend"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"portal-{uuid.uuid4()}"}
    }
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def member(db) -> Member:
    return MemberFactory.create(phone=PHONE, name="王小明")


def last_code(phone: str = PHONE) -> str:
    texts = [m.text for m in sms.outbox if m.phone == phone]
    assert texts, "no text was sent to this phone"
    match = re.search(r"\b(\d{6})\b", texts[-1])
    assert match, texts[-1]
    return match.group(1)


def ask_code(client: Client, phone: str = TYPED, **extra):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:login"), {"phone": phone, **extra})


def enter_code(client: Client, code: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:login-code"), {"code": code})


def sign_in_by_code(client: Client, phone: str = PHONE):  # type: ignore[no-untyped-def]
    ask_code(client, phone)
    return enter_code(client, last_code(phone))


def portal_member_id(client: Client) -> int | None:
    key = client.cookies.get(settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME)
    if key is None or not key.value:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(key.value)
    return store.get(portal_auth.MEMBER_KEY)


def portal_client(member: Member, client: Client | None = None) -> Client:
    """A browser signed in to the portal as `member` (as force_login does for staff)."""
    client = client or Client()
    request = RequestFactory().get("/m/")
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    portal_auth.portal_login(request, member)
    request.session.save()
    client.cookies[settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME] = str(request.session.session_key)
    return client


@pytest.fixture
def member_client(member) -> Client:
    return portal_client(member)
