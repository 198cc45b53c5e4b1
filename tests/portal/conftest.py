"""Portal fixtures: texts land in members.sms.outbox, and each test counts rate limits in a cache of its own (a
shared Redis would mix the counts of tests running side by side); `history` gives the member some purchases,
top-ups and coupons, made through the counter's services."""

import re
import uuid
from dataclasses import dataclass
from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse

from assets import counter
from assets import services as assets_services
from assets.models import Coupon, CouponTemplate, LedgerTransaction, Purchase, PurchaseRefund
from members import portal_auth, sms
from members.models import Member, Store
from members.services import payment_code_issue
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


# ------------------------------------------------------------------ a member with some history, for the portal's pages


@dataclass(frozen=True)
class History:
    """What `shop` left: a ¥300 top-up, a ¥30 bonus, a ¥128 purchase paid with a coupon and the balance, partly
    refunded, and a second coupon still to use."""

    store: Store
    top_up: LedgerTransaction
    purchase: Purchase
    refund: PurchaseRefund
    used_coupon: Coupon
    coupon: Coupon


def new_key() -> str:
    return uuid.uuid4().hex


def shop(member: Member, store: Store) -> History:
    """Build a member's history through the counter's services, as a till would."""
    top_up = counter.top_up_record(member=member, idempotency_key=new_key(), store=store, amount_fen=30_000)
    assets_services.balance_bonus_grant(
        member=member, amount_fen=3_000, idempotency_key=new_key(), actor="test", reason="Welcome"
    )
    template = CouponTemplate.objects.create(
        name="¥20 off ¥100",
        kind=CouponTemplate.Kind.CASH_OFF,
        value_fen=2_000,
        threshold_fen=10_000,
        validity=CouponTemplate.Validity.RELATIVE,
        valid_days=30,
    )
    used = assets_services.coupon_issue(template=template, member=member, idempotency_key=new_key())
    coupon = assets_services.coupon_issue(template=template, member=member, idempotency_key=new_key())
    purchase = counter.purchase_record(
        store=store,
        member=member,
        amount_fen=12_800,
        tenders={"balance": 10_800},
        coupon_code=used.code,
        payment_code=payment_code_issue(member=member).code,
        lines=[
            {"sku": "LAT", "name": "Latte", "quantity": 2, "unit_price_fen": 3_400},
            {"sku": "CAK", "name": "Cheesecake", "quantity": 1, "unit_price_fen": 6_000},
        ],
        idempotency_key=new_key(),
        actor="terminal:1",
    )
    refund = counter.purchase_refund(purchase=purchase, amount_fen=3_400, idempotency_key=new_key(), actor="terminal:1")
    used.refresh_from_db()
    return History(store, top_up, purchase, refund, used, coupon)


@pytest.fixture
def history(member: Member, store: Store) -> History:
    return shop(member, store)
