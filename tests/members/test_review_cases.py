"""Edge cases of roles and staff management."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from members.models import Staff
from members.roles import Role
from reports.services import job_execute, last_closed_business_date
from tests.conftest import PASSWORD, client_for, make_staff
from tests.factories import MemberFactory


@pytest.mark.django_db
class TestCashierWithoutStore:
    def test_sees_no_members_and_no_merchant_wide_figures(self, store):
        MemberFactory.create_batch(3, registered_store=store, registered_at=timezone.now() - timedelta(days=3))
        job_execute("snapshot_daily", business_date=last_closed_business_date())  # an all-stores row exists
        cashier = make_staff(Role.CASHIER, store=store)
        Staff.objects.filter(pk=cashier.pk).update(store=None)  # e.g. through the Django admin

        body = client_for(cashier).get(reverse("reports:dashboard")).content.decode()

        assert re.search(r'data-kpi="members".*?kpi-value">([\d,]+)<', body, re.S).group(1) == "0"


@pytest.mark.django_db
class TestRoleGroups:
    def test_a_group_that_is_not_a_role_gives_no_access(self):
        user = User.objects.create_user("odd", password=PASSWORD)
        Staff.objects.create(user=user)
        user.groups.add(Group.objects.create(name="newsletter"))
        client = client_for(Staff.objects.get(user=user))

        assert client.get(reverse("reports:dashboard")).status_code == 403

    def test_the_most_powerful_role_wins_when_a_user_has_several(self, store):
        staff = make_staff(Role.CASHIER, store=store)
        staff.user.groups.add(Group.objects.get(name=Role.MANAGER))

        assert Staff.objects.get(pk=staff.pk).role == Role.MANAGER


@pytest.mark.django_db
class TestSuperuserAccounts:
    def test_an_owner_cannot_change_a_superusers_password(self, owner_client):
        admin = make_staff(Role.OWNER, username="root-admin")
        User.objects.filter(pk=admin.user_id).update(is_superuser=True)
        old_hash = User.objects.get(pk=admin.user_id).password

        response = owner_client.post(
            reverse("members:staff-edit", args=[admin.pk]),
            {"role": Role.OWNER, "is_active": "on", "new_password": "a-brand-new-Passw0rd"},
        )

        assert response.status_code == 200
        assert "Only a superuser can change" in response.content.decode()
        assert User.objects.get(pk=admin.user_id).password == old_hash


@pytest.mark.django_db
class TestLockoutBehindAProxy:
    def test_clients_behind_one_proxy_are_told_apart_by_x_forwarded_for(self, settings, store, client):
        settings.AXES_IPWARE_PROXY_COUNT = 1
        settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
        victim = make_staff(Role.OWNER, username="boss")
        proxy = {"REMOTE_ADDR": "10.0.0.1"}

        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post(
                reverse("members:login"),
                {"username": "boss", "password": "wrong"},
                HTTP_X_FORWARDED_FOR="203.0.113.7, 10.0.0.1",
                **proxy,
            )
        locked = client.post(
            reverse("members:login"),
            {"username": "boss", "password": PASSWORD},
            HTTP_X_FORWARDED_FOR="203.0.113.7, 10.0.0.1",
            **proxy,
        )
        other = client.post(
            reverse("members:login"),
            {"username": "boss", "password": PASSWORD},
            HTTP_X_FORWARDED_FOR="198.51.100.9, 10.0.0.1",
            **proxy,
        )

        assert locked.status_code == 429
        assert other.status_code == 302 and victim.user.username == "boss"

    def test_without_a_proxy_a_forged_x_forwarded_for_changes_nothing(self, settings, store, client):
        make_staff(Role.OWNER, username="boss")

        for n in range(settings.AXES_FAILURE_LIMIT):
            client.post(
                reverse("members:login"),
                {"username": "boss", "password": "wrong"},
                HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
                REMOTE_ADDR="192.0.2.5",
            )
        response = client.post(
            reverse("members:login"),
            {"username": "boss", "password": PASSWORD},
            HTTP_X_FORWARDED_FOR="198.51.100.9",
            REMOTE_ADDR="192.0.2.5",
        )

        assert response.status_code == 429


@pytest.mark.django_db
class TestMemberPrivacyEdges:
    def test_an_auditor_cannot_download_the_register(self, auditor_client):
        assert auditor_client.get(reverse("members:export"), {"format": "csv"}).status_code == 403

    def test_a_cancelled_members_history_no_longer_shows_the_erased_data(self, owner, owner_client, store):
        from members import services

        member = services.member_register(phone="13911112222", name="林小明", store=store, by=owner.user)
        services.member_cancel(member=member, by=owner.user, reason="asked to leave")

        body = owner_client.get(reverse("members:member-detail", args=[member.member_no]), {"tab": "history"})

        text = body.content.decode()
        assert "林小明" not in text and "13911112222" not in text and "1391112222" not in text
        assert "(erased)" in text

    def test_a_forged_page_cursor_is_ignored_not_a_server_error(self, owner_client):
        import base64
        import json

        forged = base64.urlsafe_b64encode(json.dumps(["-registered_at", "2024-13-45T00:00:00+00:00", 1]).encode())

        response = owner_client.get(reverse("members:index"), {"after": forged.decode()})

        assert response.status_code == 200
