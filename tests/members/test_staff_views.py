"""Owners manage staff and stores in the back office."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from members.models import Staff, Store
from members.roles import Role
from tests.conftest import PASSWORD, make_staff

NEW_PASSWORD = "plum-tree-lantern-42"


def new_staff_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "username": "lin",
        "first_name": "Lin",
        "email": "lin@example.com",
        "role": Role.CASHIER,
        "store": "",
        "password": NEW_PASSWORD,
    }
    return data | overrides


def edit_data(staff: Staff, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "first_name": staff.user.first_name,
        "email": staff.user.email,
        "role": staff.role,
        "store": staff.store_id or "",
        "is_active": "on",
        "new_password": "",
    }
    return {k: v for k, v in (data | overrides).items() if v is not None}  # None leaves a field out (unchecked box)


def can_sign_in(username: str, password: str) -> bool:
    client = Client()
    response = client.post(reverse("members:login"), {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


class TestStaffListView:
    def test_is_only_for_owners(self, manager_client):
        response = manager_client.get(reverse("members:staff-list"))

        assert response.status_code == 403

    def test_needs_no_more_queries_for_more_staff(self, owner_client, store, other_store):
        owner_client.get(reverse("members:staff-list"))  # the first request of a session also writes it
        with CaptureQueriesContext(connection) as few:
            owner_client.get(reverse("members:staff-list"))
        for n in range(5):
            make_staff(Role.CASHIER, store=[store, other_store][n % 2], username=f"till{n}")

        with CaptureQueriesContext(connection) as many:
            response = owner_client.get(reverse("members:staff-list"))

        assert response.status_code == 200 and "till4" in response.content.decode()
        assert len(many) == len(few)


class TestStaffCreateView:
    def test_creates_a_cashier_bound_to_a_store(self, owner_client, store):
        response = owner_client.post(reverse("members:staff-create"), new_staff_data(store=store.pk))

        assert response.status_code == 302 and response["Location"] == reverse("members:staff-list")
        staff = Staff.objects.get(user__username="lin")
        assert (staff.store, staff.user.first_name, staff.user.email) == (store, "Lin", "lin@example.com")

    def test_puts_the_new_user_in_the_role_group(self, owner_client, store):
        owner_client.post(reverse("members:staff-create"), new_staff_data(store=store.pk))

        user = User.objects.get(username="lin")
        assert list(user.groups.values_list("name", flat=True)) == [Role.CASHIER]

    def test_creates_a_user_who_can_sign_in(self, owner_client, store):
        owner_client.post(reverse("members:staff-create"), new_staff_data(store=store.pk))

        assert can_sign_in("lin", NEW_PASSWORD)

    def test_lists_the_new_staff_member(self, owner_client, store):
        owner_client.post(reverse("members:staff-create"), new_staff_data(store=store.pk))

        body = owner_client.get(reverse("members:staff-list")).content.decode()

        assert '<td class="font-monospace">lin</td>' in body and f"<td>{escape(store.name)}</td>" in body

    def test_refuses_a_cashier_without_a_store(self, owner_client, db):
        users_before = User.objects.count()

        response = owner_client.post(reverse("members:staff-create"), new_staff_data(store=""))

        assert response.status_code == 200
        assert response.context["form"].errors["store"] == ["A cashier must belong to a store."]
        assert User.objects.count() == users_before and not Staff.objects.filter(user__username="lin").exists()

    def test_lets_a_manager_have_no_store(self, owner_client, db):
        response = owner_client.post(reverse("members:staff-create"), new_staff_data(role=Role.MANAGER, store=""))

        assert response.status_code == 302
        assert Staff.objects.get(user__username="lin").store is None

    @pytest.mark.parametrize("password", ["123", "password", "12345678"])
    def test_refuses_a_weak_password(self, owner_client, store, password):
        response = owner_client.post(reverse("members:staff-create"), new_staff_data(store=store.pk, password=password))

        assert response.status_code == 200
        assert response.context["form"].errors["password"]
        assert not User.objects.filter(username="lin").exists()

    def test_refuses_a_password_like_the_username(self, owner_client, store):
        data = new_staff_data(username="linxiaoming", store=store.pk, password="linxiaoming1")

        response = owner_client.post(reverse("members:staff-create"), data)

        assert response.status_code == 200 and response.context["form"].errors["password"]
        assert not User.objects.filter(username="linxiaoming").exists()

    def test_refuses_a_username_that_differs_only_in_case(self, owner_client, manager):
        response = owner_client.post(
            reverse("members:staff-create"), new_staff_data(username="MANAGER", role=Role.MANAGER)
        )

        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == ["This username is taken."]
        assert "This username is taken." in response.content.decode()
        assert not User.objects.filter(username="MANAGER").exists()

    def test_refuses_a_username_with_spaces(self, owner_client, store):
        response = owner_client.post(reverse("members:staff-create"), new_staff_data(username="li n", store=store.pk))

        assert response.status_code == 200 and "username" in response.context["form"].errors


class TestStaffEditView:
    def test_changes_role_and_store(self, owner_client, cashier, other_store):
        url = reverse("members:staff-edit", args=[cashier.pk])

        response = owner_client.post(url, edit_data(cashier, role=Role.MANAGER, store=other_store.pk))

        assert response.status_code == 302
        staff = Staff.objects.get(pk=cashier.pk)
        assert (staff.role, staff.store) == (Role.MANAGER, other_store)

    def test_moves_a_cashier_to_another_store(self, owner_client, cashier, other_store):
        url = reverse("members:staff-edit", args=[cashier.pk])

        owner_client.post(url, edit_data(cashier, store=other_store.pk))

        staff = Staff.objects.get(pk=cashier.pk)
        assert (staff.role, staff.store) == (Role.CASHIER, other_store)

    def test_refuses_to_leave_a_cashier_without_a_store(self, owner_client, cashier, store):
        url = reverse("members:staff-edit", args=[cashier.pk])

        response = owner_client.post(url, edit_data(cashier, store=""))

        assert response.status_code == 200 and "store" in response.context["form"].errors
        assert Staff.objects.get(pk=cashier.pk).store == store

    def test_deactivating_a_staff_member_stops_them_signing_in(self, owner_client, cashier):
        url = reverse("members:staff-edit", args=[cashier.pk])

        response = owner_client.post(url, edit_data(cashier, is_active=None))

        assert response.status_code == 302
        assert User.objects.get(pk=cashier.user_id).is_active is False
        assert not can_sign_in("cashier", PASSWORD)

    def test_deactivating_a_staff_member_ends_their_open_session(self, owner_client, cashier_client, cashier):
        url = reverse("members:staff-edit", args=[cashier.pk])

        owner_client.post(url, edit_data(cashier, is_active=None))

        response = cashier_client.get(reverse("reports:dashboard"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("members:login"))

    def test_sets_a_new_password(self, owner_client, cashier):
        url = reverse("members:staff-edit", args=[cashier.pk])

        owner_client.post(url, edit_data(cashier, new_password=NEW_PASSWORD))

        assert can_sign_in("cashier", NEW_PASSWORD) and not can_sign_in("cashier", PASSWORD)

    def test_refuses_a_weak_new_password(self, owner_client, cashier):
        url = reverse("members:staff-edit", args=[cashier.pk])

        response = owner_client.post(url, edit_data(cashier, new_password="123"))

        assert response.status_code == 200 and response.context["form"].errors["new_password"]
        assert can_sign_in("cashier", PASSWORD)

    def test_refuses_a_new_password_like_the_username(self, owner_client, cashier):
        url = reverse("members:staff-edit", args=[cashier.pk])

        response = owner_client.post(url, edit_data(cashier, new_password="cashier1"))

        assert response.status_code == 200 and response.context["form"].errors["new_password"]
        assert can_sign_in("cashier", PASSWORD)

    def test_refuses_an_owner_deactivating_themselves(self, owner_client, owner):
        url = reverse("members:staff-edit", args=[owner.pk])

        response = owner_client.post(url, edit_data(owner, is_active=None))

        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == ["You cannot remove your own owner access."]
        assert User.objects.get(pk=owner.user_id).is_active is True

    @pytest.mark.parametrize("role", [Role.MANAGER, Role.AUDITOR])
    def test_refuses_an_owner_dropping_their_own_owner_role(self, owner_client, owner, store, role):
        url = reverse("members:staff-edit", args=[owner.pk])

        response = owner_client.post(url, edit_data(owner, role=role, store=store.pk))

        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == ["You cannot remove your own owner access."]
        assert Staff.objects.get(pk=owner.pk).role == Role.OWNER

    def test_keeps_an_owner_signed_in_after_changing_their_own_password(self, owner_client, owner):
        url = reverse("members:staff-edit", args=[owner.pk])

        owner_client.post(url, edit_data(owner, new_password=NEW_PASSWORD))

        assert owner_client.get(reverse("reports:dashboard")).status_code == 200
        assert can_sign_in("owner", NEW_PASSWORD)

    def test_lets_an_owner_edit_their_own_name(self, owner_client, owner):
        url = reverse("members:staff-edit", args=[owner.pk])

        response = owner_client.post(url, edit_data(owner, first_name="Wang"))

        assert response.status_code == 302 and User.objects.get(pk=owner.user_id).first_name == "Wang"

    def test_answers_404_for_an_unknown_staff_member(self, owner_client, owner):
        response = owner_client.get(reverse("members:staff-edit", args=[owner.pk + 1000]))

        assert response.status_code == 404


class TestStoreEditView:
    def test_creates_a_store(self, owner_client, db):
        data = {"code": "SH-03", "name": "Pudong", "address": "Century Ave 1", "phone": "021-5555", "is_active": "on"}

        response = owner_client.post(reverse("members:store-create"), data)

        assert response.status_code == 302 and response["Location"] == reverse("members:store-list")
        store = Store.objects.get(code="SH-03")
        assert (store.name, store.address, store.phone, store.is_active) == (
            "Pudong",
            "Century Ave 1",
            "021-5555",
            True,
        )

    def test_refuses_a_duplicate_code(self, owner_client, store):
        data = {"code": store.code, "name": "Another", "is_active": "on"}

        response = owner_client.post(reverse("members:store-create"), data)

        assert response.status_code == 200 and response.context["form"].errors["code"]
        assert Store.objects.count() == 1

    def test_refuses_a_code_that_is_not_a_slug(self, owner_client, db):
        data = {"code": "SH 03", "name": "Pudong", "is_active": "on"}

        response = owner_client.post(reverse("members:store-create"), data)

        assert response.status_code == 200 and "code" in response.context["form"].errors
        assert not Store.objects.exists()

    def test_edits_a_store(self, owner_client, store):
        data = {"code": store.code, "name": "Jing'an Flagship", "is_active": ""}

        response = owner_client.post(reverse("members:store-edit", args=[store.pk]), data)

        assert response.status_code == 302
        store.refresh_from_db()
        assert (store.name, store.is_active) == ("Jing'an Flagship", False)

    def test_refuses_renaming_a_code_to_one_already_taken(self, owner_client, store, other_store):
        data = {"code": other_store.code, "name": store.name, "is_active": "on"}

        response = owner_client.post(reverse("members:store-edit", args=[store.pk]), data)

        assert response.status_code == 200 and response.context["form"].errors["code"]
        store.refresh_from_db()
        assert store.code == "SH-01"
