"""Staff register members, look at the 360° page, edit, freeze, cancel and grant paid plans."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members import services
from members.models import Member, MemberView, PaidPlan, PlanPeriod

VALID = {"phone": "13800138000", "name": "张三", "gender": "male", "birthday": "1990-05-01", "email": "z@example.com"}


def register(staff_user=None, store=None, **overrides: object) -> Member:
    data = {"phone": "13900139000", "name": "李四"} | overrides
    return services.member_register(store=store, by=staff_user, **data)  # type: ignore[arg-type]


def detail_url(member: Member, **query: str) -> str:
    url = reverse("members:member-detail", args=[member.member_no])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


class TestRegistration:
    def test_registers_the_member_for_the_cashiers_store_and_shows_their_page(self, cashier_client, store):
        response = cashier_client.post(reverse("members:member-create"), VALID)

        member = Member.objects.get()
        assert response.status_code == 302 and response["Location"] == detail_url(member)
        assert (member.phone, member.registered_store, member.channel) == ("+8613800138000", store, "store")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("phone", "12345"),
            ("birthday", (timezone.localdate() + timedelta(days=1)).isoformat()),
            ("birthday", "1800-01-01"),
            ("email", "not an e-mail"),
            ("name", "名" * 10_240),
        ],
    )
    def test_refuses_bad_input_with_a_form_error_and_writes_nothing(self, owner_client, field, value):
        response = owner_client.post(reverse("members:member-create"), VALID | {field: value})

        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert not Member.objects.exists()

    def test_refuses_a_phone_that_another_member_has(self, owner_client):
        register(phone="13800138000")

        response = owner_client.post(reverse("members:member-create"), VALID | {"phone": "+86 138 0013 8000"})

        assert "phone" in response.context["form"].errors
        assert Member.objects.count() == 1

    def test_is_refused_to_auditors(self, auditor_client):
        response = auditor_client.post(reverse("members:member-create"), VALID)

        assert response.status_code == 403 and not Member.objects.exists()


class TestMemberPage:
    def test_records_who_viewed_it(self, manager_client, manager, store):
        member = register(store=store)

        response = manager_client.get(detail_url(member))

        assert response.status_code == 200
        assert MemberView.objects.filter(member=member, viewer=manager.user).count() == 1

    def test_shows_cashiers_a_masked_phone(self, cashier_client, store):
        member = register(store=store, phone="13800138000")

        response = cashier_client.get(detail_url(member))

        assert "138****8000" in response.text and "8613800138000" not in response.text

    def test_shows_managers_the_full_phone(self, manager_client, store):
        member = register(store=store, phone="13800138000")

        response = manager_client.get(detail_url(member))

        assert "+86 138 0013 8000" in response.text

    def test_is_not_found_for_a_cashier_of_another_store(self, cashier_client, other_store):
        member = register(store=other_store)

        response = cashier_client.get(detail_url(member))

        assert response.status_code == 404 and not MemberView.objects.exists()

    @pytest.mark.parametrize("tab", ["profile", "card", "plans", "history", "views", "tier", "assets", "tags"])
    def test_renders_every_tab_as_a_plain_link_and_as_an_htmx_partial(self, owner_client, store, tab):
        member = register(store=store)

        page = owner_client.get(detail_url(member, tab=tab))
        partial = owner_client.get(detail_url(member, tab=tab), headers={"HX-Request": "true"})

        assert page.status_code == partial.status_code == 200
        assert "<!doctype" in page.text and "<!doctype" not in partial.text

    def test_card_tab_shows_the_member_number_as_qr_and_barcode(self, owner_client, store):
        member = register(store=store)

        response = owner_client.get(detail_url(member, tab="card"))

        assert response.text.count("<svg") >= 2 and member.member_no in response.text

    def test_later_tabs_say_they_are_not_yet_available(self, owner_client, store):
        member = register(store=store)

        response = owner_client.get(detail_url(member, tab="purchases"))

        assert "Not yet available" in response.text

    def test_views_tab_is_kept_from_cashiers(self, cashier_client, store):
        member = register(store=store)

        response = cashier_client.get(detail_url(member, tab="views"))

        assert "Nobody has viewed" not in response.text and "Viewed at" not in response.text

    def test_history_shows_an_edit_with_the_editors_username(self, manager_client, store):
        member = register(store=store, name="王五")
        manager_client.post(reverse("members:member-edit", args=[member.member_no]), VALID | {"name": "王六"})

        response = manager_client.get(detail_url(member, tab="history"))

        assert "王六" in response.text and "王五" in response.text
        assert '<span class="fw-medium history-user">manager</span>' in response.text


class TestMemberEdit:
    def test_saves_and_redirects_htmx_to_the_member_page(self, manager_client, store):
        member = register(store=store)

        response = manager_client.post(
            reverse("members:member-edit", args=[member.member_no]), VALID, headers={"HX-Request": "true"}
        )

        assert response.status_code == 200 and response["HX-Redirect"] == detail_url(member)
        member.refresh_from_db()
        assert (member.name, member.email) == ("张三", "z@example.com")

    def test_shows_errors_inline_in_the_form_partial(self, manager_client, store):
        member = register(store=store)

        response = manager_client.post(
            reverse("members:member-edit", args=[member.member_no]),
            VALID | {"email": "garbage"},
            headers={"HX-Request": "true"},
        )

        assert response.status_code == 200 and "<!doctype" not in response.text and "is-invalid" in response.text
        member.refresh_from_db()
        assert member.email == ""

    def test_refuses_a_cancelled_member(self, manager_client, store):
        member = register(store=store)
        services.member_cancel(member=member, by=None, reason="asked")

        response = manager_client.post(reverse("members:member-edit", args=[member.member_no]), VALID)

        assert response.status_code == 302
        member.refresh_from_db()
        assert member.name == ""


class TestStatusChanges:
    def test_freeze_and_unfreeze(self, manager_client, store):
        member = register(store=store)

        manager_client.post(reverse("members:member-freeze", args=[member.member_no]), {"reason": "lost card"})
        member.refresh_from_db()
        frozen = member.status
        manager_client.post(reverse("members:member-unfreeze", args=[member.member_no]), {"reason": "found"})
        member.refresh_from_db()

        assert (frozen, member.status) == ("frozen", "active")

    def test_cancel_needs_a_reason_and_a_confirmation(self, manager_client, store):
        member = register(store=store)

        manager_client.post(reverse("members:member-cancel", args=[member.member_no]), {"reason": "", "confirm": "on"})
        manager_client.post(reverse("members:member-cancel", args=[member.member_no]), {"reason": "asked"})

        member.refresh_from_db()
        assert member.status == "active"

    def test_cancel_pseudonymises_personal_data(self, owner_client, store):
        member = register(store=store, email="x@example.com")

        owner_client.post(
            reverse("members:member-cancel", args=[member.member_no]), {"reason": "asked", "confirm": "on"}
        )

        member.refresh_from_db()
        assert (member.status, member.phone, member.name, member.email) == ("cancelled", None, "", "")

    def test_cashiers_cannot_freeze(self, cashier_client, store):
        member = register(store=store)

        response = cashier_client.post(reverse("members:member-freeze", args=[member.member_no]), {"reason": "x"})

        assert response.status_code == 403


@pytest.fixture
def gold(db) -> PaidPlan:
    return PaidPlan.objects.create(name="Gold", price_fen=29_900, duration=PaidPlan.Duration.MONTH)


class TestGrantPlan:
    def test_needs_a_reason(self, manager_client, store, gold):
        member = register(store=store)

        response = manager_client.post(
            reverse("members:member-grant-plan", args=[member.member_no]),
            {"plan": gold.pk, "reason": " "},
            headers={"HX-Request": "true"},
        )

        assert response.status_code == 200 and "is-invalid" in response.text
        assert not PlanPeriod.objects.exists()

    def test_renewal_extends_from_the_current_end_and_shows_in_the_plans_tab(self, manager_client, store, gold):
        member = register(store=store)
        url = reverse("members:member-grant-plan", args=[member.member_no])

        manager_client.post(url, {"plan": gold.pk, "reason": "vip"})
        manager_client.post(url, {"plan": gold.pk, "reason": "renewal"})

        first, second = PlanPeriod.objects.order_by("starts_at")
        assert second.starts_at == first.ends_at and second.created_by.username == "manager"
        member.refresh_from_db()
        assert member.member_type == "paid"
        assert "renewal" in manager_client.get(detail_url(member, tab="plans")).text

    def test_cashiers_cannot_grant(self, cashier_client, store, gold):
        member = register(store=store)

        response = cashier_client.post(
            reverse("members:member-grant-plan", args=[member.member_no]), {"plan": gold.pk, "reason": "x"}
        )

        assert response.status_code == 403 and not PlanPeriod.objects.exists()


@pytest.mark.parametrize(
    "action", ["member-edit", "member-freeze", "member-unfreeze", "member-cancel", "member-grant-plan"]
)
def test_auditors_get_403_on_every_post(auditor_client, store, gold, action):
    member = register(store=store)

    response = auditor_client.post(reverse(f"members:{action}", args=[member.member_no]), {"reason": "x"})

    assert response.status_code == 403
    member.refresh_from_db()
    assert member.status == "active" and not PlanPeriod.objects.exists()


@pytest.mark.django_db
class TestMemberEditConflict:
    def test_a_form_opened_before_the_member_changed_is_refused(self, manager_client, store):
        member = register(store=store)
        opened_on = member.updated_at.isoformat()
        from members.services import member_self_update

        member_self_update(member=member, name="会员自己改的名")  # meanwhile, in the portal

        response = manager_client.post(
            reverse("members:member-edit", args=[member.member_no]), VALID | {"version": opened_on}
        )

        member.refresh_from_db()
        assert response.status_code == 200 and member.name == "会员自己改的名"
        assert "changed by someone else" in response.content.decode()

    def test_a_form_of_the_current_version_saves(self, manager_client, store):
        member = register(store=store)

        manager_client.post(
            reverse("members:member-edit", args=[member.member_no]), VALID | {"version": member.updated_at.isoformat()}
        )

        member.refresh_from_db()
        assert member.name == "张三"
