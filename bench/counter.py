"""Counter section: purchases through the POS API over HTTP beside the same purchases through the services.

The API side: gunicorn with 4 sync workers on loopback serves the project (DEBUG off), 8 client threads send a
fixed number of `POST /api/v1/purchases` between them, each with its own Idempotency-Key, for random funded
members of the ledger section's database (`huiyuan_bench_ledger`), paid from the stored balance with a payment
code issued for that request beforehand (as a till scans one per sale). Each purchase is the whole counter use
case: the quote (benefits, tier), the payment code used up, the balance paid, points and growth value earned,
the purchase row, a real-time tier check, the API's idempotency record. The service side, in this process:
the ledger section's purchase (balance, points, growth in one `ledger_unit`) with the same 8 threads and count.
Printed: requests per second, p50/p95 latency, errors, and the ratio API / service. No target: the figures go
in the issue's closing note. `verify_ledgers` runs at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

from django.conf import settings
from django.db import connection
from django.utils import timezone

from assets import services
from bench import ledger
from members.models import Member, PaymentCode, Store
from members.seeding import SEED_STORE_PREFIX
from members.terminals import terminal_create

WORKERS = 4
CLIENTS = 8
REQUESTS = 4_000  # full size; BENCH_SCALE=small: a tenth
SPEND_FEN = ledger.SPEND_FEN


def _say(line: str) -> None:
    print(line, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn(port: int) -> subprocess.Popen[bytes]:
    url = urlsplit(os.environ["DATABASE_URL"])
    env = os.environ | {
        # the database this section runs on (the bench switched its own connection to it)
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{settings.DATABASES['default']['NAME']}")),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "HUIYUAN_API_RATE_PER_MINUTE": str(10**9),  # the bench is one terminal sending as fast as it can
        "PYTHONWARNINGS": "ignore:No directory at",  # static files are not collected for the bench
    }
    return subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", str(WORKERS),
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "120",
        ],
        env=env,
    )  # fmt: skip


def _ready(port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _codes(member_ids: list[int], count: int, rng: random.Random) -> list[tuple[str, str]]:
    """One (member number, fresh payment code) per request, issued in one statement."""
    chosen = [rng.choice(member_ids) for _ in range(count)]
    numbers = dict(Member.objects.filter(pk__in=set(chosen)).values_list("pk", "member_no"))
    now = timezone.now()
    codes = [f"28{secrets.randbelow(10**16):016d}" for _ in chosen]
    PaymentCode.objects.bulk_create(
        PaymentCode(code=code, member_id=pk, issued_at=now, expires_at=now + timedelta(hours=1))
        for code, pk in zip(codes, chosen, strict=True)
    )
    return [(numbers[pk], code) for pk, code in zip(chosen, codes, strict=True)]


def _api_round(port: int, key: str, plan: list[tuple[str, str]]) -> ledger.Result:
    result = ledger.Result()
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS, timeout=300)
    shares = [plan[i::CLIENTS] for i in range(CLIENTS)]
    spans: list[tuple[float, float]] = []

    def work(share: list[tuple[str, str]]) -> None:
        latencies: list[float] = []
        errors, first = 0, ""
        barrier.wait()
        started = time.perf_counter()
        for member_no, code in share:
            body = json.dumps(
                {
                    "member_no": member_no,
                    "amount": {"amount": SPEND_FEN, "currency": "CNY"},
                    "tenders": [{"tender": "balance", "amount": {"amount": SPEND_FEN, "currency": "CNY"}}],
                    "payment_code": code,
                }
            )
            headers = {
                "Authorization": f"Bearer {key}",
                "Idempotency-Key": uuid4().hex,
                "Content-Type": "application/json",
            }
            begun = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("POST", "/api/v1/purchases", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                conn.close()
            except OSError as exc:
                errors, first = errors + 1, first or f"{type(exc).__name__}: {exc}"
                continue
            if response.status == 201 or response.status == 200:
                latencies.append((time.perf_counter() - begun) * 1000)
            else:
                errors, first = errors + 1, first or f"{response.status}: {payload[:200]!r}"
        finished = time.perf_counter()
        with lock:
            result.purchases += len(latencies)
            result.latencies += latencies
            result.errors += errors
            result.first_error = result.first_error or first
            spans.append((started, finished))

    threads = [threading.Thread(target=work, args=(share,), name=f"bench-api-{i}") for i, share in enumerate(shares)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = max(e for _s, e in spans) - min(s for s, _e in spans)
    return result


def _service_round(store: Store, member_ids: list[int], count: int) -> ledger.Result:
    """The ledger section's service purchase, 8 threads, `count` purchases between them."""
    per_thread = count // CLIENTS  # the ledger section's harness runs for a time; here, a fixed count
    result = ledger.Result()
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS, timeout=300)
    spans: list[tuple[float, float]] = []
    tag = f"{time.time_ns():x}"

    def work(index: int) -> None:
        rng = random.Random(f"{tag}:{index}")
        path = ledger._ServicePath(store)
        path.open()
        latencies: list[float] = []
        errors, first = 0, ""
        try:
            barrier.wait()
            started = time.perf_counter()
            for n in range(per_thread):
                begun = time.perf_counter()
                try:
                    path.purchase(rng.choice(member_ids), f"{tag}:{index}:{n}")
                except Exception as exc:
                    errors, first = errors + 1, first or f"{type(exc).__name__}: {exc}"
                else:
                    latencies.append((time.perf_counter() - begun) * 1000)
            finished = time.perf_counter()
            with lock:
                result.purchases += len(latencies)
                result.latencies += latencies
                result.errors += errors
                result.first_error = result.first_error or first
                spans.append((started, finished))
        finally:
            path.close()

    threads = [threading.Thread(target=work, args=(i,), name=f"bench-service-{i}") for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = max(e for _s, e in spans) - min(s for s, _e in spans)
    return result


def run(*, divisor: int = 1) -> None:
    size = ledger.SIZE // divisor
    name = ledger.database_name(size)
    member_ids = ledger._prepare(name, size)
    if member_ids is None:
        _say("BENCH counter.api_rps n/a")
        return
    count = REQUESTS if divisor == 1 else REQUESTS // 10
    store = Store.objects.filter(code__startswith=SEED_STORE_PREFIX).order_by("pk").first()
    assert store is not None
    _terminal, key = terminal_create(store=store, name=f"bench {uuid4().hex[:8]}", by=None)
    plan = _codes(member_ids, count, random.Random(count))
    connection.close()  # gunicorn's workers and the threads get connections of their own
    port = _free_port()
    server = _gunicorn(port)
    try:
        if not _ready(port):
            _say("# counter: gunicorn did not come up")
            _say("BENCH counter.api_rps n/a")
            return
        _say(
            f"# counter: {len(member_ids)} funded members in {name}; {count} purchases, {CLIENTS} clients, "
            f"gunicorn with {WORKERS} workers on 127.0.0.1:{port}"
        )
        api = _api_round(port, key, plan)
    finally:
        server.terminate()
        server.wait(timeout=30)
    service = _service_round(store, member_ids, count)
    for label, result in (("api", api), ("service", service)):
        _say(f"BENCH counter.{label}_rps {result.tps:.1f} req/s")
        _say(f"BENCH counter.{label}_p50 {result.percentile(0.5):.2f} ms")
        _say(f"BENCH counter.{label}_p95 {result.percentile(0.95):.2f} ms")
        _say(f"BENCH counter.{label}_errors {result.errors} req")
        if result.errors:
            _say(f"# counter {label}: {result.first_error}")
    ratio = api.tps / service.tps if service.tps else float("nan")
    _say(f"BENCH counter.api_vs_service {ratio:.2f} ratio")
    started = time.perf_counter()
    report = services.ledgers_verify()
    _say(f"# verify_ledgers: {report.transactions} transactions in {time.perf_counter() - started:.1f} s")
    _say(f"BENCH counter.verify_ok {int(report.ok)} bool")
    _say(f"RATIO counter.verify_ok {int(report.ok)} target >= 1 {'PASS' if report.ok else 'FAIL'}")
