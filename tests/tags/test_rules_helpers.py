"""What the rule-tag tests share (no tests here): purchases, refunds and balances on given business dates, made
through the counter's and the ledgers' services."""

from collections.abc import Sequence
from datetime import date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import time_machine

from assets import counter
from assets import services as assets_services
from assets.models import Purchase
from members.models import Member, Store
from tags.models import Tag, TagGroup

SHANGHAI = ZoneInfo("Asia/Shanghai")


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI)


def on(day: date) -> time_machine.travel:
    return time_machine.travel(noon(day), tick=False)


def buy(member: Member, fen: int, *, day: date, store: Store, categories: Sequence[tuple[str, int]] = ()) -> Purchase:
    """A cash purchase of `fen` on `day`; lines of (category, amount) when given (they need not add up)."""
    lines = [{"category": category, "unit_price_fen": amount, "quantity": 1} for category, amount in categories]
    with on(day):
        return counter.purchase_record(
            store=store, member=member, amount_fen=fen, tenders={"cash": fen}, idempotency_key=uuid4().hex, lines=lines
        )


def refund(purchase: Purchase, fen: int, *, day: date) -> None:
    with on(day):
        counter.purchase_refund(purchase=purchase, amount_fen=fen, idempotency_key=uuid4().hex)


def top_up(member: Member, fen: int) -> None:
    assets_services.balance_top_up(member=member, amount_fen=fen, idempotency_key=uuid4().hex)


def earn_points(member: Member, points: int) -> None:
    assets_services.points_earn(member=member, points=points, idempotency_key=uuid4().hex)


def custom_group() -> TagGroup:
    return TagGroup.objects.get(dimension=TagGroup.Dimension.CUSTOM, name="")


def rule_tag(rule: dict, *, name: str = "Rule", active: bool = True) -> Tag:
    """A rule tag saved as is (the tests of rule_clean check rules; these test what a clean rule selects)."""
    return Tag.objects.create(group=custom_group(), name=name, kind=Tag.Kind.RULE, rule=rule, is_active=active)


def manual_tag(name: str = "VIP", *, active: bool = True) -> Tag:
    return Tag.objects.create(group=custom_group(), name=name, kind=Tag.Kind.MANUAL, is_active=active)


def everyone(*conditions: dict, match: str = "all") -> dict:
    return {"match": match, "conditions": list(conditions)}
