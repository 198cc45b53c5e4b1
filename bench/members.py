"""Members section: the member list and its searches at 10,000 and at 1,000,000 members.

Each figure is the same request against two registers of different size, built by seed_members in two
databases (a 10,000-member merchant and a 1,000,000-member one, same 20 stores and proportions); the ratio
large/small shows whether the cost grows with the register (target: <= 2).
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from urllib.parse import urlencode

import psycopg
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import Member, Staff
from members.roles import Role
from members.seeding import members_seed

SIZES = (10_000, 1_000_000)
STORES = 20
RUNS = 15
WARMUP = 3
TARGET = 2.0
OWNER = "bench-owner"
BENCH_DATABASE = "huiyuan_bench"


def database_name(size: int) -> str:
    """huiyuan_bench holds the full-size register; smaller ones get their own (huiyuan_bench_10000)."""
    return BENCH_DATABASE if size == SIZES[-1] else f"{BENCH_DATABASE}_{size}"


def _say(line: str) -> None:
    print(line, flush=True)


def _ensure_database(name: str) -> None:
    params = settings.DATABASES["default"]
    with psycopg.connect(
        dbname="postgres",
        host=params.get("HOST") or None,
        port=params.get("PORT") or None,
        user=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            _say(f"# created database {name}")


def _use_database(name: str) -> None:
    connections["default"].close()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


def prepare_members(name: str, size: int, *, stores: int = STORES) -> None:
    """Create (once), migrate and use the bench database `name`, its register topped up to `size` members
    (kept for the next run); every section starts from this."""
    _ensure_database(name)
    _use_database(name)
    call_command("migrate", verbosity=0, interactive=False)
    have = Member.objects.count()
    if have < size:
        started = time.perf_counter()
        result = members_seed(count=size - have, stores=stores, seed=size)
        _say(f"# {name}: seeded {result.created} members in {time.perf_counter() - started:.1f} s")


def _prepare(name: str, size: int) -> None:
    prepare_members(name, size)
    ensure_owner()


def ensure_owner() -> User:
    """The owner the timed requests sign in as, created once per bench database (with a random password)."""
    if not Staff.objects.filter(user__username=OWNER).exists():
        from members import services

        services.staff_create(username=OWNER, password=secrets.token_urlsafe(24), role=Role.OWNER, store=None)
    return User.objects.get(username=OWNER)


def _timed(fn: Callable[[], object]) -> float:
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _figures() -> dict[str, str]:
    """The requests to time, as list-page query strings; chosen from this database's own data."""
    today = timezone.localdate()
    sample = Member.objects.filter(phone__isnull=False).order_by("pk").values_list("phone", flat=True).first()
    national = str(sample.national_number) if sample else "13800138000"
    return {
        "list": "",
        "filtered": urlencode(
            {"status": "frozen", "registered_from": today - timedelta(days=180), "registered_to": today}
        ),
        "phone_search": urlencode({"q": national}),
        "last4_search": urlencode({"q": national[-4:]}),
        "name_search": urlencode({"q": "zhang"}),
    }


def _baseline() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, member_no, phone, name, status, member_type, registered_at FROM members_member "
            "ORDER BY registered_at DESC, id DESC LIMIT 25"
        )
        cursor.fetchall()


def _measure(name: str, size: int, label: str) -> dict[str, float]:
    _use_database(name)
    client = Client()
    client.force_login(User.objects.get(username=OWNER))
    results: dict[str, float] = {}
    for figure, query in _figures().items():
        url = "/members/" + (f"?{query}" if query else "")
        response = client.get(url)
        if response.status_code != 200:
            _say(f"# members.{figure}_{label}: GET {url} answered {response.status_code}; not timed")
            continue
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        query_count = len(queries)  # read now: the next request clears the log
        results[figure] = _timed(partial(client.get, url))
        _say(f"BENCH members.{figure}_{label} {results[figure]:.1f} ms")
        _say(f"BENCH members.{figure}_queries_{label} {query_count} queries")
    results["sql_baseline"] = _timed(_baseline)
    _say(f"BENCH members.sql_baseline_{label} {results['sql_baseline']:.2f} ms")
    return results


def run(*, divisor: int = 1) -> None:
    sizes = [size // divisor for size in SIZES]
    names = [database_name(size) for size in sizes]
    for name, size in zip(names, sizes, strict=True):
        _prepare(name, size)
    labels = [str(size) for size in sizes]
    small, large = (_measure(name, size, label) for name, size, label in zip(names, sizes, labels, strict=True))
    _say(f"# members: {labels[0]} vs {labels[1]} members")
    _say(f"# {'figure':<14} {labels[0]:>10} {labels[1]:>10}  ratio")
    for figure in [f for f in large if f in small]:
        ratio = large[figure] / small[figure]
        _say(f"# {figure:<14} {small[figure]:>8.1f}ms {large[figure]:>8.1f}ms  {ratio:.2f}")
    for figure in ["list", "filtered", "phone_search", "last4_search", "name_search", "sql_baseline"]:
        if figure in small and figure in large:
            ratio = large[figure] / small[figure]
            verdict = "PASS" if ratio <= TARGET else "FAIL"
            _say(f"RATIO members.{figure} {ratio:.2f} target <= {TARGET:g} {verdict}")
        else:
            _say(f"RATIO members.{figure} n/a target <= {TARGET:g} FAIL")
