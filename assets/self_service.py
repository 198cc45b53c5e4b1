"""Member self-service: the daily sign-in, the points exchange and the monthly coupon allowance, for the member
portal to call, plus the writes of their configuration. Each service takes the member and the instant of the
request (`at`, read by the caller) and moves value only through the ledger services, as one unit.

Refusals are typed LedgerErrors with stable codes, registered so that a replayed refusal keeps its type. Like
assets.counter, this orchestrating module reads tiers and benefits (a real-time upgrade after sign-in growth, the
monthly coupon benefits), imported inside the functions that read them since those apps import the ledger
services; the ledger services themselves depend only on members."""

import calendar
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pghistory
from django.conf import settings
from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from assets.models import (
    MEMBER_ASSETS,
    Coupon,
    CouponTemplate,
    Exchange,
    ExchangeItem,
    LedgerTransaction,
    MonthlyCouponClaim,
    SignIn,
    SignInSettings,
)
from assets.services.core import _lock_accounts, _require_active, ledger_unit, run_in_transaction
from assets.services.coupons import coupon_issue
from assets.services.errors import (
    REFUSALS,
    CouponLimitReached,
    CouponOutOfStock,
    CouponTemplateClosed,
    LedgerError,
)
from assets.services.growth import growth_add
from assets.services.points import points_earn, points_spend
from members.models import Member

ACTOR = "portal"  # who the ledger says started these: the member, in the portal


# ------------------------------------------------------------------ refusals


class SignInClosed(LedgerError):
    code = "SIGN_IN_CLOSED"
    message = _("Daily sign-in is not open.")


class ExchangeClosed(LedgerError):
    code = "EXCHANGE_CLOSED"
    REASONS: dict[str, Any] = {
        "inactive": _("This item is not offered at the moment."),
        "not_started": _("This item can be exchanged from %(first)s."),
        "ended": _("This item could be exchanged until %(last)s."),
        "days": _("This item can be exchanged from day %(first)s to day %(last)s of each month."),
        "days_to_end": _("This item can be exchanged from day %(first)s of each month to its end."),
        "coupon": _("The coupon of this item is no longer being issued."),
    }
    message = _("This item cannot be exchanged now.")

    def __str__(self) -> str:
        return str(self.REASONS.get(str(self.params.get("reason")), self.message)) % self.params


class ExchangeOutOfStock(LedgerError):
    code = "EXCHANGE_OUT_OF_STOCK"
    message = _("This item has run out.")


class ExchangeLimitReached(LedgerError):
    code = "EXCHANGE_LIMIT_REACHED"
    REASONS: dict[str, Any] = {
        "month": _("This month's limit for this item (%(limit)s per member) has been reached."),
        "coupon": _("You already have as many of this item's coupon as allowed."),
    }
    message = _("This item cannot be exchanged again.")

    def __str__(self) -> str:
        return str(self.REASONS.get(str(self.params.get("reason")), self.message)) % self.params


for _cls in (SignInClosed, ExchangeClosed, ExchangeOutOfStock, ExchangeLimitReached):
    REFUSALS[_cls.code] = _cls


# ------------------------------------------------------------------ days in the merchant's zone


def business_date_of(at: datetime) -> date:
    """The merchant's business day of an instant, whatever zone a request has activated."""
    return at.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


# ------------------------------------------------------------------ daily sign-in


def sign_in_settings() -> SignInSettings:
    return SignInSettings.objects.get_or_create(pk=1)[0]


def streak_bonus(rules: SignInSettings, streak: int) -> int:
    """The extra points of the sign-in on day `streak` of a streak. When the bonuses repeat, day N of the
    streak counts as day N of a cycle as long as the last bonus day."""
    bonuses = rules.bonuses
    if not bonuses or streak < 1:
        return 0
    if rules.bonuses_repeat:
        streak = (streak - 1) % max(bonuses) + 1
    return bonuses.get(streak, 0)


def next_streak_bonus(rules: SignInSettings, after: int) -> tuple[int, int] | None:
    """The first bonus after day `after` of a streak: (the day of the streak it comes on, its points)."""
    bonuses = rules.bonuses
    if not bonuses:
        return None
    for day in range(after + 1, after + max(bonuses) + 1):
        if points := streak_bonus(rules, day):
            return day, points
    return None


def sign_in(*, member: Member, at: datetime) -> SignIn:
    """Sign `member` in for the business day of `at` (merchant's zone): the points and growth value of a
    sign-in and the streak's bonus, earned through the ledger together with the sign-in, as one unit. The
    streak counts consecutive business days (or every day signed in, when a missed day does not reset it).

    At most one sign-in per member and day, under any concurrency: the unit's key is the member and the day,
    and PostgreSQL holds one row per member and day. A second sign-in the same day (a double tap, two tabs, a
    retry) returns the first one, unchanged and with no new reward. Returns the sign-in. Raises SignInClosed,
    MemberFrozen, MemberCancelled; a refusal is not remembered under the day's key, so a member unfrozen (or
    a sign-in opened) later that day can sign in."""
    day = business_date_of(at)
    key = f"sign-in:{day.isoformat()}"

    def work() -> SignIn:
        _require_active(member)  # the unit's lock has just re-read the status
        rules = sign_in_settings()
        if not rules.is_enabled:
            raise SignInClosed()
        last = SignIn.objects.filter(member=member, business_date__lt=day).order_by("-business_date").first()
        if last is not None and (last.business_date == day - timedelta(days=1) or not rules.missed_day_resets):
            streak = last.streak + 1
        else:
            streak = 1
        bonus = streak_bonus(rules, streak)
        signed = SignIn.objects.create(
            member=member,
            business_date=day,
            signed_at=at,
            streak=streak,
            points=rules.points + bonus,
            bonus_points=bonus,
            growth=rules.growth,
        )
        common: dict[str, Any] = {"member": member, "actor": ACTOR, "external_ref": key}
        if signed.points:
            points_earn(points=signed.points, idempotency_key=f"{key}:points", **common)
        if signed.growth:
            from tiers import services as tiers_services

            growth_add(amount=signed.growth, idempotency_key=f"{key}:growth", **common)
            tiers_services.tier_upgrade_realtime(member=member)
        return signed

    def unit() -> SignIn:
        return ledger_unit(
            work,
            member=member,
            idempotency_key=key,
            scope=f"member:{member.pk}",
            operation="sign_in",
            request={"member": member.pk, "day": day.isoformat()},
        )

    # A transaction of its own: a refusal rolls back the claim of the day's key with it, so the next tap is
    # judged afresh, while a sign-in, once committed, is the day's answer to every later one.
    result: SignIn = run_in_transaction(unit)
    return result


PROFILE_COMPLETE_REF = "profile-complete"


def profile_is_complete(member: Member) -> bool:
    """Name, gender, birthday and e-mail all given: what the growth value for a complete profile asks for."""
    return bool(member.name and member.gender != Member.Gender.UNKNOWN and member.birthday and member.email)


def profile_completion_reward(*, member: Member) -> int:
    """The growth value for completing the profile (the tier rules' growth_profile_complete), given once per
    member ever, whatever later edits do: the unit's key is the member's. Returns the growth value given by
    this call: 0 when the profile is not complete, none is configured, or it was given before. Call it outside
    a transaction (a refusal must not be remembered under the member's key).
    Raises MemberFrozen, MemberCancelled."""
    from tiers import services as tiers_services

    amount = tiers_services.tier_rules().growth_profile_complete
    if not amount or not profile_is_complete(member):
        return 0
    if LedgerTransaction.objects.filter(member=member, external_ref=PROFILE_COMPLETE_REF).exists():
        return 0

    granted: list[int] = []

    def work() -> LedgerTransaction:
        _require_active(member)
        granted[:] = [amount]  # runs only when this call makes the grant (a replay returns the first one)
        added = growth_add(
            member=member,
            amount=amount,
            idempotency_key=f"{PROFILE_COMPLETE_REF}:growth",
            actor=ACTOR,
            external_ref=PROFILE_COMPLETE_REF,
            reason=str(_("Profile completed")),
        )
        tiers_services.tier_upgrade_realtime(member=member)
        return added

    def unit() -> LedgerTransaction:
        return ledger_unit(
            work,
            member=member,
            idempotency_key=PROFILE_COMPLETE_REF,
            scope=f"member:{member.pk}",
            operation="profile_complete",
            request={"member": member.pk},
        )

    run_in_transaction(unit)  # two saves at once: one grants, the other replays that grant
    return sum(granted)


def sign_in_settings_save(*, settings_obj: SignInSettings, by: User | None = None) -> SignInSettings:
    """Save the sign-in rules (audited by pghistory), the streak bonuses checked and sorted by day.
    Raises ValueError on malformed bonuses (the form refuses them first)."""
    settings_obj.pk = 1  # one row (a check constraint says so too)
    settings_obj.streak_bonuses = streak_bonuses_clean(settings_obj.streak_bonuses)
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="sign_in_settings_save"):
        settings_obj.save()
    return settings_obj


def streak_bonuses_clean(bonuses: Iterable[Mapping[str, object]]) -> list[dict[str, int]]:
    """[{"day": N, "points": P}, ...] sorted by day: days from 1 to 366, each once; points above zero."""
    cleaned: dict[int, int] = {}
    for bonus in bonuses:
        day, points = bonus.get("day"), bonus.get("points")
        if not isinstance(day, int) or not isinstance(points, int) or isinstance(day, bool) or isinstance(points, bool):
            raise ValueError("a streak bonus is a day and its points, both whole numbers")
        if not 1 <= day <= SignInSettings.MAX_BONUS_DAY or points < 1 or day in cleaned:
            raise ValueError(f"bad streak bonus: day {day}, {points} points")
        cleaned[day] = points
    return [{"day": day, "points": cleaned[day]} for day in sorted(cleaned)]


# ------------------------------------------------------------------ points exchange


def exchange_days(item: ExchangeItem, day: date) -> tuple[int, int] | None:
    """The days of `day`'s month on which `item` is open, (first, last), or None when every day is. A day past
    the month's end (the 31st in April) is its last day."""
    if item.month_day_from is None and item.month_day_to is None:
        return None
    last = month_end(day).day
    return min(item.month_day_from or 1, last), min(item.month_day_to or last, last)


def exchange_closed(item: ExchangeItem, at: datetime) -> ExchangeClosed | None:
    """Why `item` cannot be exchanged at `at` (merchant's zone), or None when it is open: offered, between its
    dates, on one of its days of the month, with a coupon still being issued."""
    day = business_date_of(at)
    if not item.is_active:
        return ExchangeClosed(reason="inactive")
    if item.available_from is not None and day < item.available_from:
        return ExchangeClosed(reason="not_started", first=item.available_from.isoformat())
    if item.available_until is not None and day > item.available_until:
        return ExchangeClosed(reason="ended", last=item.available_until.isoformat())
    days = exchange_days(item, day)
    if days is not None and not days[0] <= day.day <= days[1]:
        if item.month_day_to is None:
            return ExchangeClosed(reason="days_to_end", first=item.month_day_from)
        return ExchangeClosed(reason="days", first=item.month_day_from or 1, last=item.month_day_to)
    template = item.coupon_template
    fixed_until = template.valid_until if template.validity == CouponTemplate.Validity.FIXED else None
    if not template.is_active or (fixed_until is not None and fixed_until < day):
        return ExchangeClosed(reason="coupon")
    return None


def exchanges_this_month(*, member: Member, items: Iterable[ExchangeItem], at: datetime) -> dict[int, int]:
    """How many times `member` exchanged each of `items` in the calendar month of `at`: {item id: count}."""
    day = business_date_of(at)
    rows = (
        Exchange.objects.filter(
            member=member,
            item__in=[i.pk for i in items],
            business_date__gte=month_start(day),
            business_date__lte=month_end(day),
        )
        .values("item")
        .annotate(n=models.Count("pk"))
        .values_list("item", "n")
        .order_by()
    )
    return {item_id: n for item_id, n in rows}


def points_exchange(*, item: ExchangeItem, member: Member, idempotency_key: str, at: datetime) -> Exchange:
    """Exchange `item` for its price in points: the points spent and the coupon issued (a gift coupon for a
    gift) in one unit, all or nothing. The stock is a guarded counter, so no number of exchanges at once takes
    it below zero; the per-member limit counts the member's exchanges of the item in the calendar month of
    `at` (merchant's zone), under the member's lock. A retry with the same key returns the first exchange (or
    its refusal). Returns the exchange. Raises ExchangeClosed, ExchangeOutOfStock, ExchangeLimitReached,
    InsufficientPoints, MemberFrozen, MemberCancelled."""
    request = {"item": item.pk, "member": member.pk}

    def work() -> Exchange:
        _require_active(member)  # the unit's lock has just re-read the status
        fresh = ExchangeItem.objects.select_related("coupon_template").get(pk=item.pk)
        if (closed := exchange_closed(fresh, at)) is not None:
            raise closed
        if fresh.stock is not None and fresh.exchanged >= fresh.stock:
            raise ExchangeOutOfStock()
        # exact: every exchange of this member runs under the lock this unit holds
        limit = fresh.per_member_limit
        if limit is not None and exchanges_this_month(member=member, items=[fresh], at=at).get(fresh.pk, 0) >= limit:
            raise ExchangeLimitReached(reason="month", limit=limit)
        common: dict[str, Any] = {"member": member, "actor": ACTOR}
        spend = points_spend(
            points=fresh.points_price,
            idempotency_key=f"{idempotency_key}:points",
            external_ref=f"exchange:{fresh.pk}",
            reason=fresh.name,
            **common,
        )
        try:
            coupon = coupon_issue(
                template=fresh.coupon_template,
                idempotency_key=f"{idempotency_key}:coupon",
                channel=Coupon.Channel.EXCHANGE,
                **common,
            )
        except CouponOutOfStock:
            raise ExchangeOutOfStock() from None
        except CouponLimitReached:
            raise ExchangeLimitReached(reason="coupon") from None
        except CouponTemplateClosed:
            raise ExchangeClosed(reason="coupon") from None
        # the real guard of the stock (the check above only answers early): one row lock and a condition, so of
        # several exchanges of the last item exactly one gets it; the others undo their whole unit
        took = (
            ExchangeItem.objects.filter(pk=fresh.pk)
            .filter(models.Q(stock__isnull=True) | models.Q(exchanged__lt=models.F("stock")))
            .update(exchanged=models.F("exchanged") + 1)
        )
        if not took:
            raise ExchangeOutOfStock()
        return Exchange.objects.create(
            item=fresh,
            member=member,
            points=fresh.points_price,
            spend=spend,
            coupon=coupon,
            business_date=business_date_of(at),
            created_at=at,
        )

    return ledger_unit(
        work,
        member=member,
        idempotency_key=idempotency_key,
        scope=f"member:{member.pk}",
        operation="points_exchange",
        request=request,
    )


class StockBelowExchanged(Exception):
    def __init__(self, *, exchanged: int) -> None:
        super().__init__(exchanged)
        self.exchanged = exchanged


def exchange_item_save(*, item: ExchangeItem, by: User | None = None) -> ExchangeItem:
    """Create or change an exchange item (audited by pghistory). The exchanged count is the exchange's guarded
    counter, so it is never written from here; a stock below it is refused with StockBelowExchanged."""
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="exchange_item_save"):
        if item.pk is None:
            item.save()
            return item
        fields = [f.attname for f in ExchangeItem._meta.concrete_fields if f.name not in ("id", "exchanged")]
        updated = (
            ExchangeItem.objects.filter(pk=item.pk)
            .filter(models.Q(exchanged__lte=item.stock) if item.stock is not None else models.Q())
            .update(**{name: getattr(item, name) for name in fields})
        )
        if not updated:
            raise StockBelowExchanged(exchanged=ExchangeItem.objects.get(pk=item.pk).exchanged)
        item.refresh_from_db(fields=["exchanged"])
    return item


# ------------------------------------------------------------------ monthly coupon allowance


def monthly_coupons_claim(*, member: Member, at: datetime) -> list[Coupon]:
    """Issue the coupons of the member's monthly allowance still due in the calendar month of `at` (merchant's
    zone): the coupons per month of each monthly-coupons benefit that applies, added up per coupon template,
    less those claimed this month. Each coupon is the n-th of its template and month, a unique row and the key
    of its issue, and the member's lock is held throughout, so claiming again, or twice at once, issues nothing
    more. Returns the coupons issued now (none when nothing is due). A coupon that cannot be issued (out of
    stock, say) stays due; when none could be, that refusal is raised. Raises MemberFrozen, MemberCancelled,
    CouponOutOfStock, CouponTemplateClosed, CouponLimitReached."""
    from assets import self_service_selectors

    month = month_start(business_date_of(at))

    def work() -> list[Coupon]:
        _lock_accounts(member, MEMBER_ASSETS)  # queues claims of this member; re-reads the status
        _require_active(member)
        issued: list[Coupon] = []
        refused: list[LedgerError] = []
        for due in self_service_selectors.monthly_coupons_due(member=member, at=at):
            for n in range(due.claimed + 1, due.allowance + 1):
                try:
                    # a refusal takes the claim row and its remembered key with it: the coupon stays due
                    with transaction.atomic():
                        coupon = coupon_issue(
                            template=due.template,
                            member=member,
                            idempotency_key=f"monthly-coupons:{member.pk}:{month:%Y-%m}:{due.template.pk}:{n}",
                            channel=Coupon.Channel.BENEFIT,
                            actor=ACTOR,
                        )
                        MonthlyCouponClaim.objects.create(
                            member=member, template=due.template, month=month, n=n, coupon=coupon, claimed_at=at
                        )
                except LedgerError as exc:
                    refused.append(exc)
                    break
                issued.append(coupon)
        if refused and not issued:
            raise refused[0]
        return issued

    result: list[Coupon] = run_in_transaction(work)
    return result
