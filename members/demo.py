"""Demo data for a first run: one merchant, two stores, a staff user per role, 200 members. Idempotent."""

import random
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from members import services
from members.models import Member, Store
from members.roles import Role

DEMO_PASSWORD = "huiyuan-demo"
DEMO_STORES = [
    ("SH-01", "静安旗舰店", "上海市静安区南京西路 1266 号"),
    ("SH-02", "徐汇店", "上海市徐汇区淮海中路 999 号"),
]
DEMO_STAFF = [
    ("owner", "王老板", Role.OWNER, None),
    ("manager", "李经理", Role.MANAGER, None),
    ("cashier", "张收银", Role.CASHIER, "SH-01"),
    ("auditor", "赵审计", Role.AUDITOR, None),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
DEMO_MEMBERS = 200


def is_real_database() -> bool:
    """Staff exist, but none of the demo ones: a merchant's database, not a demo."""
    demo = [username for username, *_ in DEMO_STAFF]
    return User.objects.exists() and not User.objects.filter(username__in=demo).exists()


@transaction.atomic
def seed_demo() -> dict[str, int]:
    """Create whatever demo data is missing; returns how many rows of each kind were created."""
    created = {"stores": 0, "staff": 0, "members": 0}
    stores = {}
    for code, name, address in DEMO_STORES:
        stores[code], new = Store.objects.get_or_create(code=code, defaults={"name": name, "address": address})
        created["stores"] += new
    for username, name, role, store_code in DEMO_STAFF:
        if not User.objects.filter(username=username).exists():
            services.staff_create(
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                store=stores[store_code] if store_code else None,
                first_name=name,
            )
            created["staff"] += 1
    phones = [f"+8613800{n:06d}" for n in range(1, DEMO_MEMBERS + 1)]
    existing = {str(p) for p in Member.objects.filter(phone__in=phones).values_list("phone", flat=True)}
    rng = random.Random(2026)  # the same demo every time
    now = timezone.now()
    new_members = []
    for phone in phones:
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        registered_at = now - timedelta(days=rng.randint(0, 180), minutes=rng.randint(0, 24 * 60))
        if phone in existing:
            continue
        pinyin, initials = services.name_pinyin(name)  # so pinyin search finds demo members too
        new_members.append(
            Member(
                member_no=services.member_no_next(),
                phone=phone,
                name=name,
                name_pinyin=pinyin,
                name_initials=initials,
                registered_store=stores[rng.choice(list(stores))],
                registered_at=registered_at,
            )
        )
    Member.objects.bulk_create(new_members)
    created["members"] = len(new_members)
    return created
