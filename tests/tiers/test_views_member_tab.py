"""The member page's tier tab: the tier, growth value and progress, what it takes to keep the tier in rolling
mode, a manager's floor with a reason, and the history with who or which job run moved the member."""

from datetime import date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from assets import services as assets_services
from members.models import Member
from reports.models import JobRun
from tests.conftest import client_for
from tests.factories import MemberFactory
from tiers import services
from tiers.models import MemberTier, Tier, TierChange, TierGift, TierRules

SHANGHAI = ZoneInfo("Asia/Shanghai")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def ladder(db) -> tuple[Tier, Tier, Tier]:
    base = Tier.objects.get(rank=0)
    base.name = "Member"
    base.save()
    silver = Tier.objects.create(name="Silver", rank=1, threshold=100, colour="#a0a0a0")
    gold = Tier.objects.create(name="Gold", rank=2, threshold=500, colour="#d4a017", gift_points=200)
    return base, silver, gold


@pytest.fixture
def member(store, ladder) -> Member:
    return MemberFactory.create(registered_store=store, name="王小明")


def earn(member: Member, amount: int) -> None:
    assets_services.growth_add(member=member, amount=amount, idempotency_key=uuid4().hex)


def place(day: date, run: JobRun | None = None) -> None:
    services.tiers_recalculate(business_date=day, run=run)


def tab_url(member: Member) -> str:
    return reverse("members:member-detail", args=[member.member_no]) + "?tab=tier"


def floor_url(member: Member) -> str:
    return reverse("tiers:member-floor", args=[member.member_no])


def tier_of(member: Member) -> MemberTier:
    return MemberTier.objects.select_related("tier", "floor").get(member=member)


class TestTierFigures:
    def test_shows_the_tier_growth_and_what_is_left_to_the_next_tier(self, manager_client, member):
        earn(member, 320)
        place(timezone.localdate())

        response = manager_client.get(tab_url(member))

        progress = response.context["progress"]
        assert (progress.tier.name, progress.growth, progress.next_tier.name, progress.to_next) == (
            "Silver",
            320,
            "Gold",
            180,
        )
        assert response.context["percent"] == 64
        assert "Growth 320 of 500 to reach Gold: 180 to go" in response.text
        assert 'style="width: 64%' in response.text and "background-color: #a0a0a0" in response.text

    def test_says_when_the_member_is_on_the_top_tier(self, manager_client, member):
        earn(member, 900)
        place(timezone.localdate())

        response = manager_client.get(tab_url(member))

        assert response.context["progress"].next_tier is None and "The top of the ladder." in response.text

    @time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=SHANGHAI), tick=False)
    def test_rolling_mode_says_what_it_takes_to_keep_the_tier_by_the_evaluation(self, manager, member):
        services.tier_rules()
        TierRules.objects.update(mode=TierRules.Mode.ROLLING, downgrade=TierRules.Downgrade.QUALIFIED)
        with time_machine.travel(datetime(2025, 12, 10, 12, tzinfo=SHANGHAI), tick=False):
            earn(member, 400)
        with time_machine.travel(datetime(2026, 2, 1, 12, tzinfo=SHANGHAI), tick=False):
            earn(member, 320)
            place(date(2026, 2, 1))

        response = client_for(manager).get(tab_url(member))  # signed in now: sessions expire

        progress = response.context["progress"]
        assert (progress.tier.name, progress.growth, progress.keep_by, progress.to_keep) == (
            "Gold",
            320,
            date(2027, 1, 1),
            180,
        )
        assert "180 more by 2027-01-01 to keep Gold" in response.text
        assert "Growth value of the last 12 months" in response.text

    @time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=SHANGHAI), tick=False)
    def test_rolling_mode_says_the_minimum_hold_keeps_the_tier(self, manager, member):
        services.tier_rules()
        TierRules.objects.update(mode=TierRules.Mode.ROLLING, downgrade=TierRules.Downgrade.QUALIFIED, hold_months=12)
        with time_machine.travel(datetime(2026, 6, 1, 12, tzinfo=SHANGHAI), tick=False):
            earn(member, 600)
            place(date(2026, 6, 1))

        response = client_for(manager).get(tab_url(member))

        assert "Gold is kept at least until 2027-06-01 (minimum hold)." in response.text

    def test_renders_as_an_htmx_partial(self, manager_client, member):
        response = manager_client.get(tab_url(member), headers=HTMX)

        assert response.status_code == 200 and "<!doctype" not in response.text and 'id="tier-figures"' in response.text


class TestTierHistory:
    def test_lists_each_move_with_its_reason_and_who_or_which_run_made_it(self, manager_client, manager, member):
        earn(member, 150)
        run = JobRun.objects.create(job="tiers_recalculate", business_date=date(2026, 11, 30))
        place(timezone.localdate(), run=run)
        services.tier_set_manual(
            member=member, tier=Tier.objects.get(name="Gold"), reason="VIP guest", staff=manager, by=manager.user
        )

        response = manager_client.get(tab_url(member))

        history = response.context["history"]
        assert [(c.from_tier and c.from_tier.name, c.to_tier.name, c.reason) for c in history] == [
            ("Silver", "Gold", "manual"),
            ("Member", "Silver", "growth"),  # no tier row yet: the base tier
        ]
        assert response.text.count('<i class="bi bi-award me-1" aria-hidden="true"></i>Member</span>') == 1
        body = response.text
        assert "nightly recalculation of 2026-11-30" in body and ">manager<" in body
        assert "Set by staff" in body and "VIP guest" in body


class TestFloor:
    def test_review_says_what_the_floor_does_and_writes_nothing(self, manager_client, member):
        earn(member, 150)
        place(timezone.localdate())
        gold = Tier.objects.get(name="Gold")

        response = manager_client.post(floor_url(member), {"tier": gold.pk, "reason": "VIP guest"}, headers=HTMX)

        assert response.context["confirming"]
        assert "They move from Silver to Gold now." in response.text
        assert "upgrade gift pack of Gold" in response.text
        state = tier_of(member)
        assert (state.tier.name, state.floor) == ("Silver", None)
        assert not TierChange.objects.filter(reason="manual").exists()

    def test_confirmed_floor_moves_the_member_up_with_the_staff_member_and_reason(
        self, manager_client, manager, member
    ):
        gold = Tier.objects.get(name="Gold")

        response = manager_client.post(
            floor_url(member), {"tier": gold.pk, "reason": "VIP guest", "confirmed": "1"}, headers=HTMX
        )

        assert response.status_code == 200 and response["HX-Redirect"] == tab_url(member)
        state = tier_of(member)
        assert (state.tier, state.floor, state.floor_reason) == (gold, gold, "VIP guest")
        change = TierChange.objects.get(reason="manual")
        assert (change.staff, change.note) == (manager, "VIP guest")
        assert TierGift.objects.filter(member=member, tier=gold).exists()

    def test_removing_the_floor_keeps_the_tier_until_the_next_recalculation(self, owner_client, owner, member):
        gold = Tier.objects.get(name="Gold")
        services.tier_set_manual(member=member, tier=gold, reason="VIP guest", staff=owner, by=owner.user)

        owner_client.post(floor_url(member), {"tier": "", "reason": "No longer a VIP", "confirmed": "1"})

        state = tier_of(member)
        assert (state.tier, state.floor) == (gold, None)

    @pytest.mark.parametrize(
        "data",
        [
            {"tier": "", "reason": "nothing to remove"},
            {"tier": "999999", "reason": "no such tier"},
            {"reason": "no tier"},
            {"tier": "GOLD", "reason": "VIP"},
        ],
    )
    def test_refuses_bad_input_and_changes_nothing(self, manager_client, member, data):
        response = manager_client.post(floor_url(member), data | {"confirmed": "1"}, headers=HTMX)

        assert response.status_code == 200 and "tier" in response.context["form"].errors
        assert not MemberTier.objects.filter(member=member).exists() and not TierChange.objects.exists()

    def test_needs_a_reason(self, manager_client, member):
        gold = Tier.objects.get(name="Gold")

        response = manager_client.post(floor_url(member), {"tier": gold.pk, "reason": " ", "confirmed": "1"})

        assert "reason" in response.context["form"].errors and not TierChange.objects.exists()

    @pytest.mark.parametrize("client_name", ["cashier_client", "auditor_client"])
    def test_others_read_the_tab_without_the_floor_form_and_cannot_post_it(self, request, client_name, member):
        client = request.getfixturevalue(client_name)
        gold = Tier.objects.get(name="Gold")

        page = client.get(tab_url(member))
        response = client.post(floor_url(member), {"tier": gold.pk, "reason": "x", "confirmed": "1"})

        assert page.status_code == 200 and page.context["floor_form"] is None
        assert 'id="tier-floor-form"' not in page.text and 'id="tier-figures"' in page.text
        assert response.status_code == 403 and not MemberTier.objects.filter(member=member).exists()

    def test_a_cancelled_member_gets_no_floor(self, manager_client, member):
        Member.objects.filter(pk=member.pk).update(status=Member.Status.CANCELLED)
        gold = Tier.objects.get(name="Gold")

        page = manager_client.get(tab_url(member))
        response = manager_client.post(floor_url(member), {"tier": gold.pk, "reason": "x", "confirmed": "1"})

        assert page.context["floor_form"] is None and response.status_code == 403
