"""Fast synthetic members for load tests and the benchmark: `manage.py seed_members --count N`.

Rows are generated in Python and streamed with PostgreSQL COPY into a temporary table, then moved into
members_member with one INSERT ... SELECT per chunk (ON CONFLICT DO NOTHING, so a phone that a real or
demo member already has is skipped instead of failing the load). pghistory's row triggers are switched
off for this session only (session_replication_role = replica, which needs a superuser): a million
"registered" events would triple the load time and say nothing. Paid members get a current plan period
so the nightly plans_expire job finds them consistent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from pypinyin import lazy_pinyin

from members.models import PaidPlan, Store
from members.services import with_check_digit

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭萧田董潘袁蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# weights roughly follow how common the surnames are (王, 李, 张 lead)
SURNAME_WEIGHTS = [max(1.0, 8.0 - i * 0.12) for i in range(len(SURNAMES))]
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红梅鑫波斌宇浩凯健俊帆帅旭宁龙林欣晨辰"
    "雪琳晗瑶怡婷雯璐慧颖佳琪悦嘉翔鹏飞云峰亮成诚思源博文轩然宏志远兰凤洁海燕春丹玲松磊坤晓彤"
)
PHONE_PREFIXES = [f"13{d}" for d in range(10)] + [f"15{d}" for d in "01235689"] + [f"18{d}" for d in "01235689"]
PHONE_SPACE = 100_000_000  # eight digits after the prefix
PHONE_STRIDE = 48_271_043  # odd and not a multiple of 5, so n -> n * STRIDE mod 10^8 is a bijection
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com")
SEED_STORE_PREFIX = "SEED-"
REGISTRATION_SPAN = timedelta(days=3 * 365)
CHUNK = 50_000


def _weighted(choices: dict[str, float]) -> tuple[list[str], list[float]]:
    total = sum(choices.values())
    return list(choices), [v / total for v in choices.values()]


STATUSES = _weighted({"active": 96, "frozen": 3, "cancelled": 1})
TYPES = _weighted({"registered": 70, "stored_value": 22, "paid": 8})
CHANNELS = _weighted({"store": 60, "portal": 20, "referral": 8, "campaign": 7, "import": 4, "api": 1})
GENDERS = _weighted({"female": 55, "male": 35, "unknown": 10})

COLUMNS = [
    *("member_no", "phone", "name", "name_pinyin", "name_initials", "gender", "birthday", "email", "channel"),
    *("registered_store_id", "registered_at", "status", "member_type", "stored_value_at", "marketing_consent"),
    *("marketing_consent_at", "notes", "profile", "external_id", "updated_at"),
]


@dataclass
class SeedResult:
    requested: int
    created: int
    paid_periods: int
    first_member_no: str


def _syllables(chars: str) -> dict[str, str]:
    # pinyin once per character: pypinyin per row would take minutes for a million names
    return {ch: lazy_pinyin(ch)[0] for ch in chars}


PINYIN = _syllables(SURNAMES + GIVEN)


def seed_phone(n: int) -> str:
    """A unique mainland mobile number for sequence value n (distinct n give distinct numbers)."""
    prefix = PHONE_PREFIXES[n % len(PHONE_PREFIXES)]
    suffix = (n // len(PHONE_PREFIXES)) * PHONE_STRIDE % PHONE_SPACE
    return f"+86{prefix}{suffix:08d}"


def _reserve_numbers(count: int) -> int:
    """Take `count` consecutive values of the member-number sequence; returns the first."""
    with connection.cursor() as cursor:
        # one statement: nextval hands out the first, setval moves the sequence past the block
        cursor.execute(
            "SELECT first, setval('members_member_no_seq', first + %s - 1) "
            "FROM (SELECT nextval('members_member_no_seq') AS first) AS s",
            [count],
        )
        (first, _last) = cursor.fetchone()
    return int(first)


def seed_stores(count: int) -> list[int]:
    """Store ids to spread members over: the SEED-nn stores, created where missing."""
    ids = []
    for i in range(1, count + 1):
        store, _created = Store.objects.get_or_create(
            code=f"{SEED_STORE_PREFIX}{i:02d}", defaults={"name": f"Seed store {i:02d}"}
        )
        ids.append(store.pk)
    return ids


def _tsv(value: object) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def _rows(first: int, count: int, store_ids: list[int], now: datetime, rng: random.Random) -> Iterator[str]:
    store_weights = [1.0 + (i % 5) * 0.25 for i in range(len(store_ids))]  # some stores busier than others
    span = REGISTRATION_SPAN.total_seconds()
    today = now.date()
    for n in range(first, first + count):
        status = rng.choices(*STATUSES)[0]
        member_type = rng.choices(*TYPES)[0]
        registered_at = now - timedelta(seconds=span * rng.random() ** 0.8)  # more recent sign-ups
        stored_value_at = None
        if member_type == "stored_value" or (member_type == "paid" and rng.random() < 0.4):
            stored_value_at = registered_at + timedelta(days=rng.randint(0, 60))
            stored_value_at = min(stored_value_at, now)
        consent = rng.random() < 0.45
        if status == "cancelled":  # pseudonymised, as member_cancel leaves them
            phone = name = pinyin = initials = email = external_id = birthday = None
            gender, consent = "unknown", False
        else:
            surname = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
            given = "".join(rng.choice(GIVEN) for _ in range(1 if rng.random() < 0.3 else 2))
            name = surname + given
            syllables = [PINYIN[ch] for ch in name]
            pinyin, initials = "".join(syllables), "".join(s[0] for s in syllables)
            phone = seed_phone(n)
            gender = rng.choices(*GENDERS)[0]
            birthday = today - timedelta(days=rng.randint(18 * 365, 70 * 365)) if rng.random() < 0.85 else None
            email = f"{pinyin}{n % 10_000}@{rng.choice(EMAIL_DOMAINS)}" if rng.random() < 0.2 else None
            external_id = f"LEGACY-{n:09d}" if rng.random() < 0.03 else None
        row = (
            with_check_digit(f"{100_000_000 + n:09d}"),
            phone,
            name or "",
            pinyin or "",
            initials or "",
            gender,
            birthday,
            email or "",
            "import" if external_id else rng.choices(*CHANNELS)[0],
            rng.choices(store_ids, store_weights)[0],
            registered_at,
            status,
            member_type,
            stored_value_at,
            consent,
            registered_at if consent else (now if status == "cancelled" else None),
            "",
            json.dumps({"source": "seed"}) if rng.random() < 0.1 else "{}",
            external_id,
            now,
        )
        yield "\t".join(_tsv(v) for v in row) + "\n"


def members_seed(*, count: int, stores: int = 20, seed: int | None = None) -> SeedResult:
    """Load `count` synthetic members (realistic names with pinyin, unique phones, Luhn member numbers from
    the member-number sequence, spread over `stores` SEED-nn stores and three years), then ANALYZE.
    Needs a PostgreSQL superuser (the session turns off row triggers, pghistory's included)."""
    rng = random.Random(seed)
    now = timezone.now()
    store_ids = seed_stores(stores)
    plan, _created = PaidPlan.objects.get_or_create(
        name="Seed annual plan", defaults={"price_fen": 19_900, "duration": PaidPlan.Duration.YEAR}
    )
    first = _reserve_numbers(count)
    created = 0
    columns = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            # a staging table without the member table's indexes and constraints: COPY into it is cheap
            cursor.execute("DROP TABLE IF EXISTS seed_member")
            cursor.execute(f"CREATE TEMP TABLE seed_member AS SELECT {columns} FROM members_member WITH NO DATA")
            for start in range(first, first + count, CHUNK):
                size = min(CHUNK, first + count - start)
                with transaction.atomic():
                    with cursor.copy(f"COPY seed_member ({columns}) FROM STDIN") as copy:
                        buffer: list[str] = []
                        for line in _rows(start, size, store_ids, now, rng):
                            buffer.append(line)
                            if len(buffer) >= 5_000:
                                copy.write("".join(buffer))
                                buffer.clear()
                        copy.write("".join(buffer))
                    cursor.execute(
                        f"INSERT INTO members_member ({columns}) SELECT {columns} FROM seed_member "
                        "ON CONFLICT DO NOTHING"
                    )
                    created += cursor.rowcount
                    cursor.execute("TRUNCATE seed_member")  # ON COMMIT does not fire inside an outer transaction
            with transaction.atomic():
                low, high = (with_check_digit(f"{100_000_000 + n:09d}") for n in (first, first + count - 1))
                cursor.execute(
                    """
                    INSERT INTO members_planperiod (member_id, plan_id, starts_at, ends_at, source, reason,
                                                    order_ref, created_at)
                    SELECT id, %(plan)s, %(now)s - (random() * interval '300 days'),
                           %(now)s + interval '65 days' + (random() * interval '300 days'),
                           'import', 'seed', '', %(now)s
                    FROM members_member
                    WHERE member_type = 'paid' AND member_no BETWEEN %(low)s AND %(high)s
                      AND length(member_no) = length(%(low)s)
                      AND NOT EXISTS (SELECT 1 FROM members_planperiod p WHERE p.member_id = members_member.id)
                    """,
                    {"plan": plan.pk, "now": now, "low": low, "high": high},
                )
                periods = cursor.rowcount
            cursor.execute("DROP TABLE seed_member")
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE members_member")
        cursor.execute("ANALYZE members_planperiod")
    return SeedResult(
        requested=count,
        created=created,
        paid_periods=periods,
        first_member_no=with_check_digit(f"{100_000_000 + first:09d}"),
    )
