"""Reads of member self-service: a member's sign-in status, the exchange catalogue as they see it, their monthly
coupons still due; and the back office's view of the sign-in and the catalogue."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum

from assets import self_service, services
from assets.models import (
    CouponHolding,
    CouponTemplate,
    ExchangeItem,
    MonthlyCouponClaim,
    PointLot,
    SignIn,
)
from benefits.selectors import benefits_applicable
from members.models import Member

# ------------------------------------------------------------------ daily sign-in


@dataclass(frozen=True)
class SignInStatus:
    is_open: bool
    signed_today: bool
    today: SignIn | None
    streak: int  # today's day of the streak, or the streak a sign-in today continues (0: none)
    points_today: int  # what today's sign-in earned, or would earn, its bonus included
    growth_today: int
    next_bonus_day: int | None  # the day of the streak that earns the next bonus
    next_bonus_points: int
    next_bonus_in_days: int | None  # 0: today's sign-in earns it; 1: tomorrow's; …


def sign_in_status(*, member: Member, at: datetime) -> SignInStatus:
    """Where `member` stands on the business day of `at`: signed in today or not, the current streak, and the
    next streak bonus with how many days of signing in it is away (assuming no day is missed)."""
    rules = self_service.sign_in_settings()
    day = self_service.business_date_of(at)
    last = SignIn.objects.filter(member=member, business_date__lte=day).order_by("-business_date").first()
    signed_today = last is not None and last.business_date == day
    if last is not None and (
        signed_today or last.business_date == day - timedelta(days=1) or not rules.missed_day_resets
    ):
        streak = last.streak
    else:
        streak = 0
    if signed_today:
        assert last is not None
        points_today, growth_today = last.points, last.growth
    else:
        points_today, growth_today = rules.points + self_service.streak_bonus(rules, streak + 1), rules.growth
    upcoming = self_service.next_streak_bonus(rules, streak)
    first_day_ahead = 1 if signed_today else 0  # the next sign-in is tomorrow's, or today's
    return SignInStatus(
        is_open=rules.is_enabled,
        signed_today=signed_today,
        today=last if signed_today else None,
        streak=streak,
        points_today=points_today,
        growth_today=growth_today,
        next_bonus_day=upcoming[0] if upcoming else None,
        next_bonus_points=upcoming[1] if upcoming else 0,
        next_bonus_in_days=upcoming[0] - streak - 1 + first_day_ahead if upcoming else None,
    )


@dataclass(frozen=True)
class SignInFigures:
    today: int
    this_month: int  # sign-ins this calendar month
    members_this_month: int
    points_this_month: int


def sign_in_figures(*, at: datetime) -> SignInFigures:
    """Sign-ins on the business day of `at` and in its calendar month, for the back office."""
    day = self_service.business_date_of(at)
    month = SignIn.objects.filter(business_date__gte=self_service.month_start(day), business_date__lte=day)
    totals = month.aggregate(
        n=Count("pk"),
        today=Count("pk", filter=Q(business_date=day)),
        members=Count("member", distinct=True),
        points=Sum("points", default=0),
    )
    return SignInFigures(
        today=int(totals["today"]),
        this_month=int(totals["n"]),
        members_this_month=int(totals["members"]),
        points_this_month=int(totals["points"]),
    )


# ------------------------------------------------------------------ points exchange


@dataclass(frozen=True)
class CatalogueEntry:
    item: ExchangeItem
    refusal: services.LedgerError | None  # what exchanging it now would be refused with; None: it would not
    exchanged_this_month: int  # by this member
    opens: tuple[int, int] | None  # the days of this month it is open (first, last); None: every day

    @property
    def can_exchange(self) -> bool:
        return self.refusal is None

    @property
    def reason_code(self) -> str:
        return self.refusal.code if self.refusal is not None else ""

    @property
    def why_not(self) -> str:
        return str(self.refusal) if self.refusal is not None else ""


def _points_available(member: Member, at: datetime) -> int:
    """Points the member can spend at `at`: their live lots (lots past expiry count for nothing, even before
    the nightly job has expired them)."""
    lots = PointLot.objects.filter(member=member, remaining__gt=0).exclude(expires_at__lte=at)
    return int(lots.aggregate(s=Sum("remaining", default=0))["s"])


def exchange_catalogue(*, member: Member, at: datetime) -> list[CatalogueEntry]:
    """The items offered to `member` at `at` (offered and not past their last day), in the merchant's order,
    each with whether the member can exchange it now and, if not, the refusal the exchange would meet: the
    same checks as self_service.points_exchange, in its order. Four queries, however long the catalogue."""
    day = self_service.business_date_of(at)
    items = list(
        ExchangeItem.objects.filter(is_active=True)
        .exclude(available_until__lt=day)
        .select_related("coupon_template")
        .order_by("sort_order", "pk")
    )
    if not items:
        return []
    done = self_service.exchanges_this_month(member=member, items=items, at=at)
    holdings = dict(
        CouponHolding.objects.filter(member=member, template__in={i.coupon_template_id for i in items})
        .values_list("template", "issued")
        .order_by()
    )
    available = _points_available(member, at)
    inactive: services.LedgerError | None = None
    if member.status == Member.Status.FROZEN:
        inactive = services.MemberFrozen()
    elif member.status == Member.Status.CANCELLED:
        inactive = services.MemberCancelled()
    entries = []
    for item in items:
        template = item.coupon_template
        refusal: services.LedgerError | None = inactive or self_service.exchange_closed(item, at)
        if refusal is None and item.stock is not None and item.exchanged >= item.stock:
            refusal = self_service.ExchangeOutOfStock()
        if refusal is None and template.stock is not None and template.issued >= template.stock:
            refusal = self_service.ExchangeOutOfStock()
        if refusal is None and item.per_member_limit is not None and done.get(item.pk, 0) >= item.per_member_limit:
            refusal = self_service.ExchangeLimitReached(reason="month", limit=item.per_member_limit)
        limit = template.per_member_limit
        if refusal is None and limit is not None and holdings.get(template.pk, 0) >= limit:
            refusal = self_service.ExchangeLimitReached(reason="coupon")
        if refusal is None and available < item.points_price:
            refusal = services.InsufficientPoints(available=available, wanted=item.points_price)
        entries.append(
            CatalogueEntry(
                item=item,
                refusal=refusal,
                exchanged_this_month=done.get(item.pk, 0),
                opens=self_service.exchange_days(item, day),
            )
        )
    return entries


def exchange_item_list() -> QuerySet[ExchangeItem]:
    """Every exchange item for the back office: offered ones first, in the members' order."""
    return ExchangeItem.objects.select_related("coupon_template").order_by("-is_active", "sort_order", "pk")


# ------------------------------------------------------------------ monthly coupon allowance


@dataclass(frozen=True)
class MonthlyDue:
    template: CouponTemplate
    allowance: int  # coupons a month, over every monthly-coupons benefit of the member giving this template
    claimed: int  # this month

    @property
    def due(self) -> int:
        return max(0, self.allowance - self.claimed)


def monthly_coupons_due(*, member: Member, at: datetime) -> list[MonthlyDue]:
    """The member's monthly coupon allowance in the calendar month of `at` (merchant's zone), per coupon
    template: how many a month the benefits that apply give, how many were claimed this month (what is still
    due is the difference). Empty when no such benefit applies."""
    allowance: dict[int, int] = {}
    templates: dict[int, CouponTemplate] = {}
    for benefit in benefits_applicable(member=member, at=at).monthly_coupons:
        template = benefit.coupon_template
        if template is None or benefit.coupons_per_month < 1:
            continue
        templates[template.pk] = template
        allowance[template.pk] = allowance.get(template.pk, 0) + benefit.coupons_per_month
    if not allowance:
        return []
    month = self_service.month_start(self_service.business_date_of(at))
    claimed = dict(
        MonthlyCouponClaim.objects.filter(member=member, month=month, template__in=list(allowance))
        .values("template")
        .annotate(n=Count("pk"))
        .values_list("template", "n")
        .order_by()
    )
    ordered = sorted(templates.values(), key=lambda t: (t.name, t.pk))
    return [MonthlyDue(template=t, allowance=allowance[t.pk], claimed=claimed.get(t.pk, 0)) for t in ordered]
