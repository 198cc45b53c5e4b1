"""Demo ledgers for a first run: coupon templates, recharge packages and some history for 60 demo members.
Every movement goes through the services under fixed keys, so running it again changes nothing."""

import random

from assets import services
from assets.models import Coupon, CouponTemplate, LedgerTransaction, RechargePackage
from members.models import Member, Staff, Store
from members.roles import Role

DEMO_LEDGER_MEMBERS = 60
DEMO_SCOPE = "demo"


def _templates() -> list[CouponTemplate]:
    specs = [
        ("满100减10", {"kind": CouponTemplate.Kind.CASH_OFF, "value_fen": 1000, "threshold_fen": 10000}),
        ("满300减50", {"kind": CouponTemplate.Kind.CASH_OFF, "value_fen": 5000, "threshold_fen": 30000, "stock": 500}),
        ("全场八五折", {"kind": CouponTemplate.Kind.PERCENT, "percent_of_price": 85, "cap_fen": 3000}),
        ("生日蛋糕兑换券", {"kind": CouponTemplate.Kind.GIFT, "gift_name": "6 寸生日蛋糕", "per_member_limit": 1}),
    ]
    templates = []
    for name, fields in specs:
        template = CouponTemplate.objects.filter(name=name).order_by("pk").first() or CouponTemplate.objects.create(
            name=name, validity=CouponTemplate.Validity.RELATIVE, valid_days=30, **fields
        )
        templates.append(template)
    return templates


def _packages(templates: list[CouponTemplate]) -> list[RechargePackage]:
    specs = [("充 500 送 50", 50000, 5000, 100, 0), ("充 1000 送 150", 100000, 15000, 300, 100)]
    packages = []
    for name, pay, bonus, points, growth in specs:
        package = RechargePackage.objects.filter(name=name).order_by("pk").first()
        if package is None:
            package = RechargePackage.objects.create(
                name=name, pay_fen=pay, bonus_fen=bonus, points=points, growth=growth
            )
            package.coupon_templates.add(templates[0])
        packages.append(package)
    return packages


def seed_demo_ledgers() -> dict[str, int]:
    """Create the demo catalogue and history where missing; returns the number of ledger transactions made."""
    before = LedgerTransaction.objects.count()
    templates = _templates()
    packages = _packages(templates)
    staff = Staff.objects.filter(user__username="manager").first()
    cashier = Staff.objects.filter(user__username="cashier").first()
    stores = list(Store.objects.order_by("code"))
    if staff is None or staff.role != Role.MANAGER or not stores:
        return {"ledger transactions": 0}
    members = Member.objects.filter(phone__startswith="+8613800", status=Member.Status.ACTIVE).order_by("pk")
    rng = random.Random(7)  # the same demo every time
    for member in members[:DEMO_LEDGER_MEMBERS]:
        try:
            _member_history(member, rng, staff, cashier, stores, templates, packages)
        except services.LedgerError:
            continue  # a member changed by hand since (spent, coupon limit): leave it as it is
    return {"ledger transactions": LedgerTransaction.objects.count() - before}


def _member_history(
    member: Member,
    rng: random.Random,
    staff: Staff,
    cashier: Staff | None,
    stores: list[Store],
    templates: list[CouponTemplate],
    packages: list[RechargePackage],
) -> None:
    who = cashier if cashier and member.registered_store_id == cashier.store_id else staff
    store = member.registered_store or stores[0]
    key = f"demo:{member.pk}"
    package = rng.choice([None, *packages])
    services.balance_top_up(
        member=member,
        idempotency_key=f"{key}:top-up",
        amount_fen=None if package else rng.choice([20000, 30000, 50000]),
        package=package,
        store=store,
        staff=who,
    )
    for n in range(rng.randint(1, 4)):
        services.balance_spend(
            member=member,
            amount_fen=rng.randint(1500, 9000),
            idempotency_key=f"{key}:spend:{n}",
            store=store,
            staff=who,
            external_ref=f"DEMO-{member.pk}-{n}",
        )
        services.points_earn(
            member=member,
            points=rng.randint(15, 90),
            idempotency_key=f"{key}:earn:{n}",
            store=store,
            staff=who,
            external_ref=f"DEMO-{member.pk}-{n}",
        )
    if rng.random() < 0.5:
        coupon = services.coupon_issue(
            template=rng.choice(templates),
            member=member,
            idempotency_key=f"{key}:coupon",
            staff=staff,
            channel=Coupon.Channel.MANUAL,
        )
        if rng.random() < 0.3:
            services.coupon_redeem(
                coupon=coupon, member=member, idempotency_key=f"{key}:redeem", store=store, staff=who
            )
