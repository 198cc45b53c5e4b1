"""Lifecycle stages at their boundaries (the default thresholds: new 30 days and at most one purchase, active 90,
churned past 180), transitions over time with their history, idempotency, and the thresholds as settings."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command

from assets.models import Purchase, PurchaseRefund
from members.models import Member
from members.services import member_cancel
from reports.models import JobRun
from tags.lifecycle import LifecycleOutOfOrder, lifecycle_job, lifecycle_settings
from tags.models import LifecycleChange, MemberLifecycle, Tag
from tests.factories import MemberFactory
from tests.tags.test_rfm import buy

pytestmark = pytest.mark.django_db
D = date(2026, 6, 30)
DAY = timedelta(days=1)


def registered(days_before: int, on: date = D) -> Member:
    """A member registered at noon `days_before` business days before `on`."""
    moment = datetime.combine(on - days_before * DAY, time(12), tzinfo=ZoneInfo(settings.TIME_ZONE))
    return MemberFactory.create(registered_at=moment)


def stage_of(member: Member) -> str | None:
    row = MemberLifecycle.objects.filter(member=member).first()
    return row.stage if row else None


@pytest.mark.parametrize(
    ("registered_days", "purchases_days", "expected"),
    [
        (0, [], "new"),  # joined on D
        (30, [5], "new"),  # 30 days and one purchase: still new
        (31, [5], "active"),  # 31 days: no longer new; bought 5 days ago
        (10, [5, 3], "active"),  # two purchases: no longer new
        (200, [89], "active"),  # the last purchase 89 days before D: within 90
        (200, [90], "silent"),  # exactly 90 days: silent
        (200, [180], "silent"),  # 180 days: still silent
        (200, [181], "churned"),  # more than 180 days
        (31, [], "silent"),  # never bought, registered 31 days ago
        (180, [], "silent"),  # never bought, 180 days
        (181, [], "churned"),  # never bought, more than 180 days
        (400, [0], "active"),  # bought on D itself
    ],
)
def test_stage_boundaries(store, registered_days, purchases_days, expected):
    member = registered(registered_days)
    for days in purchases_days:
        buy(member, store, D - days * DAY, 1000)

    lifecycle_job(business_date=D)

    assert stage_of(member) == expected


def test_purchases_after_d_and_unpaid_ones_do_not_count(store):
    member = registered(200)
    buy(member, store, D + DAY, 1000)  # after D
    buy(member, store, D - 5 * DAY, 0)  # nothing paid
    buy(member, store, D - 6 * DAY, 800, refunds=((800, D - 1 * DAY),))  # refunded in full by D
    buy(member, store, D - 7 * DAY, 800, refunds=((800, D + DAY),))  # refunded after D: still paid on D

    lifecycle_job(business_date=D)

    assert stage_of(member) == "active"
    LifecycleChange.objects.all().delete()
    MemberLifecycle.objects.all().delete()
    PurchaseRefund.objects.filter(purchase__member=member, purchase__business_date=D - 7 * DAY).delete()
    Purchase.objects.filter(member=member, business_date=D - 7 * DAY).delete()
    lifecycle_job(business_date=D)
    assert stage_of(member) == "churned"


def test_members_registered_after_d_are_not_staged_and_cancelled_lose_their_stage(owner):
    later = registered(-1)
    leaving = registered(10)
    lifecycle_job(business_date=D)
    assert stage_of(later) is None and stage_of(leaving) == "new"

    member_cancel(member=leaving, by=owner.user, reason="asked to leave")
    lifecycle_job(business_date=D + DAY)

    assert stage_of(leaving) is None


def test_the_first_stage_and_every_move_are_recorded_once(store):
    member = registered(25)
    lifecycle_job(business_date=D)
    lifecycle_job(business_date=D)  # again: nothing more

    buy(member, store, D + DAY, 1000)
    buy(member, store, D + 2 * DAY, 1000)
    lifecycle_job(business_date=D + 2 * DAY)

    changes = list(LifecycleChange.objects.filter(member=member).values_list("business_date", "from_stage", "to_stage"))
    assert changes == [(D, "", "new"), (D + 2 * DAY, "new", "active")]
    row = MemberLifecycle.objects.get(member=member)
    assert (row.stage, row.since) == ("active", D + 2 * DAY)


def test_a_run_writes_only_the_members_who_moved(store):
    staying = registered(200)
    buy(staying, store, D - 10 * DAY, 1000)
    moving = registered(200)
    buy(moving, store, D - 89 * DAY, 1000)
    assert lifecycle_job(business_date=D) == (2, 4)  # two first stages, two rows added

    staged, written = lifecycle_job(business_date=D + DAY)

    assert (staged, written) == (2, 2)  # moving: active → silent, one history row and one row changed
    assert MemberLifecycle.objects.get(member=staying).since == D


def test_transitions_over_time_through_the_nightly_job(store):
    """Day by day with the clock moved on, as beat runs the job each night for the day that ended."""
    zone = ZoneInfo(settings.TIME_ZONE)
    member = registered(0, on=date(2026, 1, 1))
    buy(member, store, date(2026, 1, 1), 1000)
    nights = [date(2026, 1, 2), date(2026, 2, 2), date(2026, 4, 2), date(2026, 7, 2)]
    for night in nights:
        with time_machine.travel(datetime.combine(night, time(1, 30), tzinfo=zone), tick=False):
            call_command("run_job", "lifecycle")

    changes = list(LifecycleChange.objects.filter(member=member).values_list("business_date", "to_stage"))
    # new on 1 Jan; 31 days after registering (1 Feb) active; 90 days after the purchase (1 Apr) silent;
    # 181 days after it (1 Jul) churned
    assert changes == [
        (date(2026, 1, 1), "new"),
        (date(2026, 2, 1), "active"),
        (date(2026, 4, 1), "silent"),
        (date(2026, 7, 1), "churned"),
    ]
    assert JobRun.objects.filter(job="lifecycle", status="succeeded").count() == 4


def test_thresholds_are_settings(store):
    rules = lifecycle_settings()
    rules.active_days, rules.churned_days = 30, 60
    rules.save()
    member = registered(200)
    buy(member, store, D - 45 * DAY, 1000)

    lifecycle_job(business_date=D)

    assert stage_of(member) == "silent"


def test_lifecycle_tags_count_and_hold_their_members(store):
    from tags.selectors import tag_members

    fresh = registered(3)
    lifecycle_job(business_date=D)

    tag = Tag.objects.get(code="lifecycle:new")
    assert tag.member_count == 1 and list(tag_members(tag)) == [fresh] and tag.label == "New"


def test_an_earlier_date_after_a_later_run_is_refused():
    JobRun.objects.create(job="lifecycle", business_date=D, status=JobRun.Status.SUCCEEDED)

    with pytest.raises(LifecycleOutOfOrder):
        lifecycle_job(business_date=D - DAY)
