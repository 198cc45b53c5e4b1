"""`manage.py seed_demo`: the demo merchant for a first run, safe to repeat."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from members.demo import DEMO_PASSWORD
from members.models import Member, Staff, Store
from members.roles import Role
from members.services import is_valid_member_no
from reports.models import DailySnapshot, JobRun


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def all_rows() -> dict[str, list[int]]:
    return {
        "stores": list(Store.objects.order_by("pk").values_list("pk", flat=True)),
        "users": list(User.objects.order_by("pk").values_list("pk", flat=True)),
        "staff": list(Staff.objects.order_by("pk").values_list("pk", flat=True)),
        "members": list(Member.objects.order_by("pk").values_list("pk", flat=True)),
        "job_runs": list(JobRun.objects.order_by("pk").values_list("pk", flat=True)),
        "snapshots": list(DailySnapshot.objects.order_by("pk").values_list("pk", flat=True)),
    }


@pytest.mark.django_db
class TestSeedDemo:
    def test_creates_two_stores_four_staff_and_two_hundred_members(self):
        seed()

        assert (Store.objects.count(), Staff.objects.count(), Member.objects.count()) == (2, 4, 200)
        assert set(Store.objects.values_list("code", flat=True)) == {"SH-01", "SH-02"}

    def test_creates_one_staff_member_per_role(self):
        seed()

        roles = {staff.user.username: staff.role for staff in Staff.objects.select_related("user")}
        assert roles == {"owner": Role.OWNER, "manager": Role.MANAGER, "cashier": Role.CASHIER, "auditor": Role.AUDITOR}

    def test_binds_the_cashier_to_store_sh_01(self):
        seed()

        stores = {
            staff.user.username: staff.store and staff.store.code
            for staff in Staff.objects.select_related("user", "store")
        }
        assert stores == {"owner": None, "manager": None, "cashier": "SH-01", "auditor": None}

    def test_gives_the_demo_staff_the_demo_password(self):
        seed()

        assert all(user.check_password(DEMO_PASSWORD) for user in User.objects.filter(staff__isnull=False))

    def test_gives_members_valid_unique_numbers_in_both_stores(self):
        seed()

        numbers = list(Member.objects.values_list("member_no", flat=True))
        assert len(set(numbers)) == 200 and all(is_valid_member_no(n) for n in numbers)
        assert set(Member.objects.values_list("registered_store__code", flat=True)) == {"SH-01", "SH-02"}

    def test_runs_the_daily_snapshot(self):
        seed()

        run = JobRun.objects.get(job="snapshot_daily")
        assert (run.status, run.trigger) == (JobRun.Status.SUCCEEDED, JobRun.Trigger.COMMAND)
        assert DailySnapshot.objects.filter(job_run=run).exists()

    def test_changes_nothing_when_run_again(self):
        seed()
        before = all_rows()

        output = seed()

        assert all_rows() == before
        assert "nothing changed" in output

    def test_adds_only_what_is_missing(self):
        seed()
        # the newest five without purchases: demo ledgers are written for the oldest members and demo purchases
        # for some others, and their history protects them
        newest = Member.objects.filter(purchases__isnull=True).order_by("-pk").values("pk")[:5]
        Member.objects.filter(pk__in=newest).delete()
        User.objects.filter(username="auditor").delete()

        seed()

        assert (Staff.objects.count(), Member.objects.count()) == (4, 200)
        assert Staff.objects.get(user__username="auditor").role == Role.AUDITOR


@pytest.mark.django_db
def test_demo_members_can_be_found_by_pinyin():
    call_command("seed_demo")

    assert not Member.objects.filter(name_pinyin="").exists()
