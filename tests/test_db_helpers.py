"""config.db: work under a time limit."""

import pytest
from django.db import connection, transaction

from config.db import TooSlow, time_limit, within

pytestmark = pytest.mark.django_db


def _setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        return cursor.fetchone()[0]


def _sleep(seconds: float) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 7 FROM pg_sleep(%s)", [seconds])
        return cursor.fetchone()[0]


def test_work_within_the_limit_returns_its_result_and_the_setting_is_put_back():
    before = _setting()
    with transaction.atomic():
        assert within(2_000, lambda: _sleep(0)) == 7
        assert _setting() == before  # still inside the caller's transaction


def test_a_statement_over_the_limit_raises_too_slow_and_rolls_the_block_back():
    from reports.models import JobRun

    before = _setting()
    with transaction.atomic():
        with pytest.raises(TooSlow), time_limit(50):
            JobRun.objects.create(job="probe", business_date="2026-01-01")
            _sleep(2)
        assert not JobRun.objects.filter(job="probe").exists()
        assert _setting() == before
        assert _sleep(0) == 7  # the caller's transaction goes on
