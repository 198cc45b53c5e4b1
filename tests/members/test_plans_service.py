"""Paid plans: a grant starts now or extends the current period, calendar months are kept, periods never
overlap, and the nightly plans_expire job moves lapsed members back to their earlier type."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import Member, PaidPlan, PlanPeriod
from members.services import MemberError, member_cancel, member_register, plan_grant
from reports import services as reports_services
from reports.models import JobRun

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def member(db) -> Member:
    return member_register(phone="13800138000", name="张三")


def make_plan(duration: str = PaidPlan.Duration.MONTH) -> PaidPlan:
    return PaidPlan.objects.create(name=f"Plus {duration}", price_fen=2_900, duration=duration)


def grant(member: Member, plan: PaidPlan, by=None, now: datetime | None = None, reason: str = "goodwill") -> PlanPeriod:
    return plan_grant(member=member, plan=plan, by=by, source=PlanPeriod.Source.MANUAL, reason=reason, now=now)


@pytest.mark.django_db
class TestPlanGrant:
    def test_first_period_starts_now_and_makes_the_member_paid(self, member, owner):
        now = timezone.now()

        period = grant(member, make_plan(), by=owner.user, now=now)

        member.refresh_from_db()
        assert period.starts_at == now and member.member_type == Member.Type.PAID
        assert (period.created_by, period.reason) == (owner.user, "goodwill")

    def test_renewal_starts_at_the_end_of_the_current_period(self, member):
        plan = make_plan()
        now = timezone.now()
        first = grant(member, plan, now=now)

        renewal = grant(member, plan, now=now + timedelta(days=10))

        assert renewal.starts_at == first.ends_at

    def test_a_grant_after_a_lapse_starts_afresh(self, member):
        plan = make_plan()
        now = timezone.now()
        grant(member, plan, now=now - timedelta(days=100))

        period = grant(member, plan, now=now)

        assert period.starts_at == now

    @pytest.mark.parametrize(
        ("duration", "start", "end"),
        [
            ("month", datetime(2027, 3, 15, 10, 0), datetime(2027, 4, 15, 10, 0)),
            ("month", datetime(2027, 1, 31, 10, 0), datetime(2027, 2, 28, 10, 0)),
            ("month", datetime(2028, 1, 31, 10, 0), datetime(2028, 2, 29, 10, 0)),
            ("quarter", datetime(2027, 11, 30, 10, 0), datetime(2028, 2, 29, 10, 0)),
            ("year", datetime(2028, 2, 29, 10, 0), datetime(2029, 2, 28, 10, 0)),
        ],
        ids=["month", "31-jan-to-28-feb", "31-jan-to-29-feb-leap", "quarter", "year-from-leap-day"],
    )
    def test_lasts_calendar_months_in_the_merchants_zone(self, member, duration, start, end):
        period = grant(member, make_plan(duration), now=start.replace(tzinfo=SHANGHAI))

        assert timezone.localtime(period.ends_at, SHANGHAI).replace(tzinfo=None) == end

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_a_manual_grant_needs_a_reason(self, member, reason):
        with pytest.raises(MemberError) as refused:
            grant(member, make_plan(), reason=reason)

        member.refresh_from_db()
        assert refused.value.field == "reason"
        assert member.member_type == Member.Type.REGISTERED and not PlanPeriod.objects.exists()

    def test_a_sale_needs_no_reason(self, member):
        period = plan_grant(
            member=member, plan=make_plan(), by=None, source=PlanPeriod.Source.COUNTER, order_ref="POS-1"
        )

        assert period.order_ref == "POS-1"

    def test_refuses_a_cancelled_member(self, member):
        member_cancel(member=member, by=None, reason="asked to leave")

        with pytest.raises(MemberError):
            grant(member, make_plan())

    def test_is_recorded_with_the_user_and_reason(self, member, owner):
        period = grant(member, make_plan(), by=owner.user)

        event = period.events.select_related("pgh_context").get()  # type: ignore[attr-defined]
        assert event.pgh_context.metadata == {"user": owner.user.pk, "action": "plan_grant", "reason": "goodwill"}


@pytest.mark.django_db
class TestPlanPeriodOverlap:
    def test_postgresql_refuses_an_overlapping_period(self, member):
        plan = make_plan()
        period = grant(member, plan)

        with pytest.raises(IntegrityError), transaction.atomic():
            PlanPeriod.objects.create(
                member=member,
                plan=plan,
                starts_at=period.starts_at + timedelta(days=1),
                ends_at=period.ends_at + timedelta(days=1),
                source=PlanPeriod.Source.MANUAL,
            )

    def test_allows_a_period_that_starts_where_the_last_ends(self, member):
        plan = make_plan()
        period = grant(member, plan)

        PlanPeriod.objects.create(
            member=member,
            plan=plan,
            starts_at=period.ends_at,
            ends_at=period.ends_at + timedelta(days=30),
            source=PlanPeriod.Source.MANUAL,
        )

        assert member.plan_periods.count() == 2


@pytest.mark.django_db
class TestPlansExpire:
    @pytest.fixture
    def yesterday(self) -> date:
        return reports_services.last_closed_business_date()

    def run(self, day: date) -> tuple[JobRun | None, bool]:
        return reports_services.job_execute("plans_expire", business_date=day)

    def lapsed(self, phone: str, **fields: object) -> Member:
        """A member whose monthly plan ended weeks ago."""
        member = member_register(phone=phone)
        grant(member, make_plan(), now=timezone.now() - timedelta(days=60))
        if fields:
            Member.objects.filter(pk=member.pk).update(**fields)
        return member

    def test_moves_a_lapsed_member_back_to_registered(self, yesterday):
        member = self.lapsed("13800138000")

        run, ran = self.run(yesterday)

        member.refresh_from_db()
        assert ran and member.member_type == Member.Type.REGISTERED
        assert (run.rows_examined, run.rows_changed) == (1, 1)

    def test_moves_a_lapsed_stored_value_member_back_to_stored_value(self, yesterday):
        member = self.lapsed("13800138000", stored_value_at=timezone.now() - timedelta(days=90))

        self.run(yesterday)

        member.refresh_from_db()
        assert member.member_type == Member.Type.STORED_VALUE

    def test_leaves_a_member_with_a_covering_period_alone(self, yesterday):
        member = member_register(phone="13800138000")
        grant(member, make_plan(), now=timezone.now() - timedelta(days=5))

        run, _ran = self.run(yesterday)

        member.refresh_from_db()
        assert member.member_type == Member.Type.PAID and run.rows_changed == 0

    def test_leaves_a_member_who_bought_after_the_day_closed_alone(self, yesterday):
        member = member_register(phone="13800138000")
        grant(member, make_plan(), now=timezone.now())  # bought today, before the nightly run for yesterday

        self.run(yesterday)

        member.refresh_from_db()
        assert member.member_type == Member.Type.PAID

    def test_a_second_run_of_the_same_date_changes_nothing(self, yesterday):
        member = self.lapsed("13800138000")
        self.run(yesterday)
        plan_grant(member=member, plan=make_plan(), by=None, source=PlanPeriod.Source.COUNTER)
        member.refresh_from_db()
        assert member.member_type == Member.Type.PAID

        _run, ran = self.run(yesterday)

        member.refresh_from_db()
        assert not ran and member.member_type == Member.Type.PAID
        assert JobRun.objects.filter(job="plans_expire", business_date=yesterday).count() == 1

    def test_running_the_service_again_finds_nothing_to_change(self, yesterday):
        from members.services import plans_expire

        self.lapsed("13800138000")
        self.lapsed("13900139000")
        first = plans_expire(business_date=yesterday, batch=1)

        again = plans_expire(business_date=yesterday, batch=1)

        assert first == (2, 2) and again == (0, 0)
