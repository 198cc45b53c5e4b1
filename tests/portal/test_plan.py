"""The paid membership page: the plan running now and where the paid stretch ends, renewals queued after it, a
reminder near the end, the last plan that ended, and the plans on sale with the tiers they grant."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import PaidPlan, PlanPeriod
from members.portal_selectors import plan_status
from members.services import plan_grant
from tiers.models import Tier

pytestmark = pytest.mark.django_db
URL = reverse("portal:plan")


@pytest.fixture
def plan(db) -> PaidPlan:
    plan = PaidPlan.objects.create(name="Gold year", price_fen=19_900, duration=PaidPlan.Duration.YEAR)
    gold = Tier.objects.create(rank=2, name="Aurum", threshold=2000, colour="#d4a017")
    gold.plans.add(plan)
    return plan


def period(member, plan, starts_days: int, days: int) -> PlanPeriod:
    start = timezone.now() + timedelta(days=starts_days)
    return PlanPeriod.objects.create(
        member=member, plan=plan, starts_at=start, ends_at=start + timedelta(days=days), source="manual"
    )


def test_no_plan_lists_the_plans_on_sale_with_their_tiers(member_client, plan):
    PaidPlan.objects.create(name="Old plan", price_fen=100, duration="month", is_active=False)

    body = member_client.get(URL).content.decode()

    assert "You have no paid plan" in body and "Gold year" in body and "199.00" in body and "Grants Aurum" in body
    assert "Old plan" not in body and "counter of any store" in body


def test_a_running_plan_shows_its_end_and_days_left(member_client, member, plan):
    plan_grant(member=member, plan=plan, by=None, source="counter")

    status = plan_status(member=member, now=timezone.now())
    body = member_client.get(URL).content.decode()

    assert status.current is not None and not status.ends_soon and status.days_left in (365, 366)
    assert "Paid membership until" in body and f"{status.days_left} days left" in body


def test_a_renewal_extends_the_paid_stretch(member, plan):
    first = plan_grant(member=member, plan=plan, by=None, source="counter")
    second = plan_grant(member=member, plan=plan, by=None, source="counter")

    status = plan_status(member=member, now=timezone.now())

    assert status.current == first and status.queued == [second] and status.paid_until == second.ends_at


def test_a_gap_ends_the_stretch(member, plan):
    running = period(member, plan, -10, 20)
    period(member, plan, 30, 30)

    status = plan_status(member=member, now=timezone.now())

    assert status.paid_until == running.ends_at and len(status.queued) == 1 and status.ends_soon


def test_the_end_near_reminds_to_renew(member_client, member, plan):
    period(member, plan, -360, 370)

    body = member_client.get(URL).content.decode()

    assert "Renew at the counter" in body


def test_an_ended_plan_is_named(member_client, member, plan):
    period(member, plan, -400, 365)

    body = member_client.get(URL).content.decode()

    assert "Your Gold year plan ended on" in body


def test_a_future_plan_says_when_it_starts(member_client, member, plan):
    period(member, plan, 5, 30)

    body = member_client.get(URL).content.decode()

    assert "Starts on" in body


def test_another_member_s_plan_is_not_shown(member_client, plan):
    from tests.factories import MemberFactory

    period(MemberFactory.create(), plan, -1, 30)

    assert "You have no paid plan" in member_client.get(URL).content.decode()


def test_the_me_page_links_the_plan_and_says_until_when(member_client, member, plan):
    plan_grant(member=member, plan=plan, by=None, source="counter")

    body = member_client.get(reverse("portal:me")).content.decode()

    assert reverse("portal:plan") in body and "until" in body
    assert reverse("portal:profile") in body and reverse("portal:phone") in body
