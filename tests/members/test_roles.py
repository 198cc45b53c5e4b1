"""Who may open and change what: owners, managers, cashiers (one store) and auditors (read-only)."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from members.middleware import SESSION_STORE_KEY
from members.models import Staff, Store
from members.roles import Role
from members.selectors import store_list
from reports.models import JobRun
from tests.conftest import PASSWORD, client_for
from tests.factories import MemberFactory

NEW_PASSWORD = "plum-tree-lantern-42"


def kpi(body: str, name: str) -> str:
    """The figure shown in one dashboard tile (data-kpi=name)."""
    match = re.search(rf'data-kpi="{name}".*?class="kpi-value">([^<]*)<', body, re.DOTALL)
    assert match, f"no {name} tile on the page"
    return match.group(1)


def data_state() -> dict[str, object]:
    """Every row the forbidden requests below could create or change."""
    return {
        "stores": list(Store.objects.order_by("pk").values_list("pk", "code", "name", "is_active")),
        "users": list(User.objects.order_by("pk").values_list("pk", "username", "is_active", "first_name")),
        "staff": list(Staff.objects.order_by("pk").values_list("pk", "store_id", "user__groups__name")),
        "job_runs": list(JobRun.objects.order_by("pk").values_list("pk", "job", "status")),
        "schedules": list(PeriodicTask.objects.order_by("pk").values_list("pk", "enabled")),
    }


def data_changing_posts(store: Store, staff: Staff) -> dict[str, tuple[str, dict[str, object]]]:
    """Valid POSTs to every back-office action that changes data (an owner's would succeed)."""
    schedule = PeriodicTask.objects.get(name="snapshot_daily")
    return {
        "store-create": (reverse("members:store-create"), {"code": "SH-09", "name": "Pudong", "is_active": "on"}),
        "store-edit": (reverse("members:store-edit", args=[store.pk]), {"code": store.code, "name": "Renamed"}),
        "staff-create": (
            reverse("members:staff-create"),
            {"username": "newbie", "role": Role.CASHIER, "store": store.pk, "password": NEW_PASSWORD},
        ),
        "staff-edit": (
            reverse("members:staff-edit", args=[staff.pk]),
            {"role": Role.MANAGER, "store": "", "is_active": "on"},
        ),
        "job-run": (reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-01-15"}),
        "schedule-toggle": (reverse("reports:schedule-toggle", args=[schedule.pk]), {}),
    }


DATA_CHANGING_ACTIONS = ["store-create", "store-edit", "staff-create", "staff-edit", "job-run", "schedule-toggle"]


class TestCashierAccess:
    @pytest.mark.parametrize(
        "name", ["members:staff-list", "members:staff-create", "members:store-create", "reports:jobs"]
    )
    def test_is_refused_owner_and_job_pages(self, cashier_client, name):
        response = cashier_client.get(reverse(name))

        assert response.status_code == 403

    def test_is_refused_the_store_edit_page(self, cashier_client, store):
        response = cashier_client.get(reverse("members:store-edit", args=[store.pk]))

        assert response.status_code == 403

    def test_cannot_run_a_job(self, cashier_client):
        response = cashier_client.post(
            reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-01-15"}
        )

        assert response.status_code == 403
        assert not JobRun.objects.exists()

    def test_sees_only_its_own_store_in_the_store_list(self, cashier, store, other_store):
        stores = list(store_list(viewer=cashier))

        assert stores == [store]

    def test_counts_only_its_own_store_as_active_on_the_dashboard(self, cashier_client, store, other_store):
        body = cashier_client.get(reverse("reports:dashboard")).content.decode()

        assert kpi(body, "stores") == "1"

    def test_counts_only_members_registered_in_its_store_on_the_dashboard(self, cashier_client, store, other_store):
        MemberFactory.create_batch(3, registered_store=store)
        MemberFactory.create_batch(2, registered_store=other_store)

        body = cashier_client.get(reverse("reports:dashboard")).content.decode()

        assert kpi(body, "members") == "3"

    def test_cannot_switch_to_another_store(self, cashier_client, store, other_store):
        MemberFactory.create_batch(2, registered_store=other_store)

        cashier_client.post(reverse("members:store-switch"), {"store": other_store.pk, "next": "/"})

        response = cashier_client.get(reverse("reports:dashboard"))
        assert SESSION_STORE_KEY not in cashier_client.session
        assert response.wsgi_request.office_store == store
        assert kpi(response.content.decode(), "members") == "0"


class TestOwnerAccess:
    def test_sees_members_of_every_store_on_the_dashboard(self, owner_client, store, other_store):
        MemberFactory.create_batch(3, registered_store=store)
        MemberFactory.create_batch(2, registered_store=other_store)

        body = owner_client.get(reverse("reports:dashboard")).content.decode()

        assert kpi(body, "members") == "5" and kpi(body, "stores") == "2"

    def test_can_switch_the_dashboard_to_one_store(self, owner_client, store, other_store):
        MemberFactory.create_batch(3, registered_store=store)
        MemberFactory.create_batch(2, registered_store=other_store)

        owner_client.post(reverse("members:store-switch"), {"store": other_store.pk, "next": "/"})

        response = owner_client.get(reverse("reports:dashboard"))
        assert response.wsgi_request.office_store == other_store
        assert kpi(response.content.decode(), "members") == "2"

    @pytest.mark.parametrize("value", ["abc", "1 OR 1=1", "\uff11"])
    def test_gets_404_for_a_store_switch_to_a_bogus_store(self, owner_client, store, value):
        response = owner_client.post(reverse("members:store-switch"), {"store": value, "next": "/"})

        assert response.status_code == 404 and SESSION_STORE_KEY not in owner_client.session

    def test_gets_404_for_a_store_switch_to_an_unknown_store(self, owner_client, store):
        response = owner_client.post(reverse("members:store-switch"), {"store": store.pk + 1000, "next": "/"})

        assert response.status_code == 404 and SESSION_STORE_KEY not in owner_client.session

    def test_clears_the_store_switch_with_an_empty_choice(self, owner_client, store):
        owner_client.post(reverse("members:store-switch"), {"store": store.pk, "next": "/"})

        owner_client.post(reverse("members:store-switch"), {"store": "", "next": "/"})

        assert SESSION_STORE_KEY not in owner_client.session

    def test_is_sent_home_when_the_store_switch_names_another_site(self, owner_client, store):
        response = owner_client.post(
            reverse("members:store-switch"), {"store": store.pk, "next": "https://evil.example/"}
        )

        assert response.status_code == 302 and response["Location"] == "/"

    @pytest.mark.parametrize("action", DATA_CHANGING_ACTIONS)
    def test_can_make_every_change_an_auditor_is_refused(self, owner_client, store, cashier, action):
        url, data = data_changing_posts(store, cashier)[action]
        before = data_state()

        response = owner_client.post(url, data)

        assert response.status_code == 302
        assert data_state() != before


class TestAuditorAccess:
    @pytest.mark.parametrize("action", DATA_CHANGING_ACTIONS)
    def test_cannot_change_anything(self, auditor_client, store, cashier, action):
        url, data = data_changing_posts(store, cashier)[action]
        before = data_state()

        response = auditor_client.post(url, data)

        assert response.status_code == 403
        assert data_state() == before

    def test_can_still_read_the_store_list(self, auditor_client, store):
        response = auditor_client.get(reverse("members:store-list"))

        assert response.status_code == 200 and store.code in response.content.decode()

    def test_can_sign_out(self, auditor_client):
        response = auditor_client.post(reverse("members:logout"))

        assert response.status_code == 302 and response["Location"] == reverse("members:login")
        assert "_auth_user_id" not in auditor_client.session

    def test_can_switch_language(self, auditor_client):
        response = auditor_client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})

        assert response.status_code == 302
        assert response.cookies["django_language"].value == "zh-hans"

    def test_can_switch_the_viewed_store(self, auditor_client, store):
        response = auditor_client.post(reverse("members:store-switch"), {"store": store.pk, "next": "/"})

        assert response.status_code == 302 and auditor_client.session[SESSION_STORE_KEY] == store.pk


class TestManagerAccess:
    def test_can_open_the_jobs_page(self, manager_client):
        response = manager_client.get(reverse("reports:jobs"))

        assert response.status_code == 200

    def test_can_run_a_job(self, manager_client, manager):
        response = manager_client.post(
            reverse("reports:job-run"), {"job": "snapshot_daily", "business_date": "2026-01-15"}
        )

        assert response.status_code == 302 and response["Location"] == reverse("reports:jobs")
        run = JobRun.objects.get()
        assert (run.job, run.business_date.isoformat(), run.trigger, run.status, run.started_by) == (
            "snapshot_daily",
            "2026-01-15",
            JobRun.Trigger.MANUAL,
            JobRun.Status.SUCCEEDED,
            manager.user,
        )

    @pytest.mark.parametrize("name", ["members:staff-list", "members:staff-create"])
    def test_is_refused_staff_management(self, manager_client, name):
        response = manager_client.get(reverse(name))

        assert response.status_code == 403

    def test_cannot_edit_a_staff_member(self, manager_client, cashier, store):
        response = manager_client.post(
            reverse("members:staff-edit", args=[cashier.pk]), {"role": Role.OWNER, "store": store.pk, "is_active": "on"}
        )

        assert response.status_code == 403
        assert Staff.objects.get(pk=cashier.pk).role == Role.CASHIER


class TestDjangoAdmin:
    def test_refuses_an_owner_who_is_not_a_superuser(self, owner):
        owner.user.is_staff = True  # Django's default would let is_staff in; here only superusers get in
        owner.user.save()
        client = client_for(owner)

        response = client.get("/admin/", follow=True)

        assert response.redirect_chain == [("/admin/login/?next=/admin/", 302)]
        assert "not authorized to access this page" in response.content.decode()

    def test_lets_a_superuser_in(self, db):
        client = Client()
        client.force_login(User.objects.create_superuser("root", "root@example.com", PASSWORD))

        response = client.get("/admin/")

        assert response.status_code == 200 and "Site administration" in response.content.decode()


@pytest.mark.django_db
class TestRoleGroups:
    def test_exist_for_every_role(self):
        names = set(Group.objects.values_list("name", flat=True))

        assert set(Role.values) <= names

    def test_give_the_auditor_only_view_permissions(self):
        codenames = list(Group.objects.get(name=Role.AUDITOR).permissions.values_list("codename", flat=True))

        assert codenames and all(c.startswith("view_") for c in codenames)
        assert "view_member" in codenames

    def test_let_a_cashier_view_members(self):
        cashier_group = Group.objects.get(name=Role.CASHIER)

        assert cashier_group.permissions.filter(content_type__app_label="members", codename="view_member").exists()
        assert not cashier_group.permissions.filter(codename="add_staff").exists()

    def test_keep_staff_management_with_the_owner(self):
        owner_perms = Group.objects.get(name=Role.OWNER).permissions
        manager_perms = Group.objects.get(name=Role.MANAGER).permissions

        assert owner_perms.filter(content_type__app_label="members", codename="add_staff").exists()
        assert not manager_perms.filter(content_type__app_label="members", codename="add_staff").exists()
        assert manager_perms.filter(content_type__app_label="members", codename="view_member").exists()

    def test_grant_permissions_that_staff_users_actually_have(self, owner, manager):
        owner_user, manager_user = User.objects.get(pk=owner.user_id), User.objects.get(pk=manager.user_id)

        assert owner_user.has_perm("members.add_staff") and not manager_user.has_perm("members.add_staff")
