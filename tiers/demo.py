"""A demo ladder and its benefits, for a first run. Idempotent."""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from benefits.models import Benefit
from members import services as members_services
from members.models import Member, PaidPlan, PlanPeriod
from tiers import services
from tiers.models import Tier

DEMO_PLAN = ("金卡年卡", 19_900, PaidPlan.Duration.YEAR, "一年金卡权益 全场 95 折")
DEMO_PLAN_MEMBERS = ["+8613800000001", "+8613800000002", "+8613800000003"]

DEMO_LADDER = [
    # rank, name, growth, colour, icon, single top-up route (fen)
    (1, "银卡会员", 500, "#8e9aaf", "award", None),
    (2, "金卡会员", 2000, "#d4a017", "award-fill", 100_000),
    (3, "钻石会员", 8000, "#3a7bd5", "gem", None),
]


def seed_demo_tiers() -> dict[str, int]:
    """The demo ladder (ranks 1-3 above the base tier), a few benefits, and every member placed on it."""
    created = 0
    base = services.base_tier()
    tiers = {0: base}
    for rank, name, threshold, colour, icon, single in DEMO_LADDER:
        tier, new = Tier.objects.get_or_create(
            rank=rank,
            defaults={
                "name": name,
                "threshold": threshold,
                "colour": colour,
                "icon": icon,
                "top_up_single_fen": single,
                "gift_points": 100 * rank,
            },
        )
        tiers[rank] = tier
        created += new
    demo_benefits: list[tuple[str, dict[str, Any], list[int]]] = [
        ("金卡 95 折", {"kind": Benefit.Kind.DISCOUNT, "discount_percent": 95}, [2]),
        ("钻石 9 折", {"kind": Benefit.Kind.DISCOUNT, "discount_percent": 90}, [3]),
        ("积分 1.5 倍", {"kind": Benefit.Kind.POINTS_MULTIPLIER, "multiplier_percent": 150}, [2, 3]),
        (
            "生日月双倍积分",
            {"kind": Benefit.Kind.BIRTHDAY, "birthday_when": "month", "multiplier_percent": 200},
            [1, 2, 3],
        ),
        ("每周三会员日 9 折", {"kind": Benefit.Kind.MEMBER_DAY, "weekday": 2, "discount_percent": 90}, [1, 2, 3]),
        ("专属客服", {"kind": Benefit.Kind.INFO, "description": "优先接待 专属顾问一对一服务"}, [3]),
    ]
    for name, fields, ranks in demo_benefits:
        benefit, new = Benefit.objects.get_or_create(name=name, defaults=fields)
        if new:
            benefit.tiers.set([tiers[r] for r in ranks if r in tiers])
        created += new
    created += _seed_demo_plan(tiers[2])
    yesterday = timezone.localdate() - timedelta(days=1)
    services.tiers_recalculate(business_date=yesterday)
    return {"tiers and benefits": created}


def _seed_demo_plan(tier: Tier) -> int:
    """A paid plan granting the gold tier, held by the first demo members."""
    name, price_fen, duration, description = DEMO_PLAN
    plan = PaidPlan.objects.filter(name=name).first()
    if plan is not None:
        return 0
    plan = members_services.plan_save(
        plan=None, by=None, name=name, price_fen=price_fen, duration=duration, is_active=True, description=description
    )
    tier.plans.add(plan)
    for member in Member.objects.filter(phone__in=DEMO_PLAN_MEMBERS).order_by("pk"):
        with transaction.atomic():
            members_services.plan_grant(
                member=member, plan=plan, by=None, source=PlanPeriod.Source.MANUAL, reason="演示数据"
            )
            services.tier_plan_started(member=member)
    return 1
