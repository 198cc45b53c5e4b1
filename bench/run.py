"""Run the benchmark sections: `make bench` or `scripts/bench` (BENCH_SCALE=small for a quick check).

Sections run in order, members, ledger, tiers, counter then tags; BENCH_SECTIONS=members,ledger,tiers,counter,tags
(the default) chooses which.

The data lives in databases of its own on the same server as DATABASE_URL, kept and reused across runs:
`huiyuan_bench` holds the full-size register, `huiyuan_bench_<N>` a register of N members. Pages are timed
through Django's test Client in this process, with DEBUG off, as the median of several runs.
"""

from __future__ import annotations

import os
import sys
import warnings
from urllib.parse import urlsplit, urlunsplit

BENCH_DATABASE = "huiyuan_bench"
SECTIONS = ("members", "ledger", "tiers", "counter", "tags")


def _configure_environment() -> None:
    url = urlsplit(os.environ.get("DATABASE_URL") or "postgres:///huiyuan")
    os.environ["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{BENCH_DATABASE}"))
    # production-like: DEBUG off, no per-request logging in the figures
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["HUIYUAN_MANIFEST_STATIC"] = "false"
    os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    os.environ["HUIYUAN_REQUEST_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> int:
    _configure_environment()
    warnings.filterwarnings("ignore", "No directory at")  # static files are not collected for the bench
    import django

    django.setup()
    from bench import counter, ledger, members, tags, tiers

    scale = os.environ.get("BENCH_SCALE", "full")
    if scale not in {"full", "small"}:
        print(f"BENCH_SCALE must be full or small, not {scale!r}", file=sys.stderr)
        return 2
    chosen = {s.strip() for s in os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)).split(",") if s.strip()}
    if not chosen or chosen - set(SECTIONS):
        print(f"BENCH_SECTIONS must name some of {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    divisor = 100 if scale == "small" else 1
    if "members" in chosen:
        members.run(divisor=divisor)
    if "ledger" in chosen:
        ledger.run(divisor=divisor)
    if "tiers" in chosen:
        tiers.run(divisor=divisor)
    if "counter" in chosen:
        counter.run(divisor=divisor)
    if "tags" in chosen:
        tags.run(divisor=divisor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
