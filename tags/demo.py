"""A demo purchase history (as if imported from the till before going live) and a first run of the RFM,
lifecycle and tag jobs over it, so the RFM map and the lifecycle funnel have something to show. Idempotent."""

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assets.models import Purchase, PurchaseLine
from members.models import Member, Store
from reports import services as reports_services
from reports.models import JobRun

CATEGORIES = ("咖啡", "茶饮", "烘焙", "轻食", "周边")
HISTORY_DAYS = 400


@transaction.atomic
def seed_demo_purchases() -> dict[str, int]:
    """0 to 15 purchases a member over the last 400 days, each with one or two lines (categories for the
    preference tags); members differ in how often and how much they buy. Skipped once any exist."""
    if Purchase.objects.filter(actor="demo").exists():
        return {"demo purchases": 0}
    rng = random.Random(2027)
    zone = ZoneInfo(settings.TIME_ZONE)
    yesterday = timezone.localdate() - timedelta(days=1)
    stores = list(Store.objects.order_by("pk"))
    purchases: list[Purchase] = []
    lines: list[tuple[int, list[tuple[str, int]]]] = []
    for member in Member.objects.exclude(status=Member.Status.CANCELLED).order_by("pk"):
        visits = rng.choice((0, 1, 1, 2, 3, 5, 8, 12, 15))
        level = rng.choice((2_000, 4_000, 8_000, 20_000))
        favourite = rng.choice(CATEGORIES)
        recent = rng.random() < 0.6  # most buy lately; the others drifted away
        for index in range(visits):
            days_ago = rng.randint(0, 60) if recent and index < visits // 2 + 1 else rng.randint(30, HISTORY_DAYS)
            day = yesterday - timedelta(days=days_ago)
            amount = max(500, int(level * rng.uniform(0.5, 1.6)) // 100 * 100)
            first = int(amount * rng.choice((1.0, 0.7))) // 100 * 100 or amount
            parts = [(favourite, first)] + ([(rng.choice(CATEGORIES), amount - first)] if amount > first else [])
            purchases.append(
                Purchase(
                    order_no=f"DEMO-{member.pk}-{index}",
                    store=stores[member.pk % len(stores)],
                    member=member,
                    actor="demo",
                    source=Purchase.Source.IMPORT,
                    occurred_at=datetime.combine(day, time(rng.randint(9, 20), rng.randint(0, 59)), tzinfo=zone),
                    business_date=day,
                    gross_fen=amount,
                    payable_fen=amount,
                    wechat_fen=amount,
                )
            )
            lines.append((len(purchases) - 1, parts))
    Purchase.objects.bulk_create(purchases)
    PurchaseLine.objects.bulk_create(
        PurchaseLine(purchase=purchases[i], name=category, category=category, unit_price_fen=fen, amount_fen=fen)
        for i, parts in lines
        for category, fen in parts
    )
    return {"demo purchases": len(purchases)}


def run_demo_jobs() -> None:
    """The night's RFM, lifecycle and tag jobs for yesterday, as beat would run them."""
    day = reports_services.last_closed_business_date()
    for job in ("rfm", "lifecycle", "tags_rules"):
        reports_services.job_execute(job, business_date=day, trigger=JobRun.Trigger.COMMAND)
