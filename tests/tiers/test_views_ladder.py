"""The tier ladder in the back office: the list with its distribution, a tier's page with the preview of who
would move before anything is saved, and deleting a tier nobody stands on."""

from datetime import timedelta
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assets import services as assets_services
from assets.models import CouponTemplate
from members import services as members_services
from members.models import Member, PaidPlan, PlanPeriod
from tests.factories import MemberFactory
from tiers import catalogue, selectors, services
from tiers.models import MemberTier, Tier, TierChange, TierRules, TierSimulation

FULL_WIDTH_1 = "\uff11"
TIER = {
    "name": "Platinum",
    "rank": "3",
    "threshold": "1000",
    "colour": "#5B8DEF",
    "icon": "gem",
    "description": "",
    "top_up_single": "",
    "top_up_total": "",
    "gift_points": "",
    "gift_bonus": "",
}


def polled(client, page):
    """The preview's simulation, as the page fetches it until the worker is done."""
    return client.get(reverse("tiers:simulation", args=[page.context["preview"].simulation.pk]))


@pytest.fixture
def worker(django_capture_on_commit_callbacks):
    """The worker runs the preview's simulation once the request is over (as it would, a moment later)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def ladder(db) -> tuple[Tier, Tier, Tier]:
    base = Tier.objects.get(rank=0)
    base.name = "Member"
    base.save()
    silver = Tier.objects.create(name="Silver", rank=1, threshold=100, colour="#a0a0a0")
    gold = Tier.objects.create(name="Gold", rank=2, threshold=500, colour="#d4a017")
    return base, silver, gold


def with_growth(amount: int) -> Member:
    member = MemberFactory.create()
    if amount:
        assets_services.growth_add(member=member, amount=amount, idempotency_key=uuid4().hex)
    return member


def place_everyone() -> None:
    services.tiers_recalculate(business_date=timezone.localdate())


def tier_of(member: Member) -> str:
    state = MemberTier.objects.select_related("tier").filter(member=member).first()
    return state.tier.name if state else "Member"


def written() -> tuple[int, int, int, list[tuple[int, int]]]:
    """What a preview must leave alone: tiers, member tiers, history, and who stands where."""
    return (
        Tier.objects.count(),
        TierChange.objects.count(),
        MemberTier.objects.count(),
        list(MemberTier.objects.order_by("member_id").values_list("member_id", "tier_id")),
    )


class TestLadderPage:
    def test_shows_each_tier_with_its_routes_plans_gift_and_member_count(self, manager_client, ladder):
        gold = ladder[2]
        gold.top_up_single_fen, gold.gift_points, gold.gift_bonus_fen = 100_000, 200, 2_000
        gold.save()
        gold.plans.add(PaidPlan.objects.create(name="Gold Pass", price_fen=9_900, duration="year"))
        gold.gift_coupons.add(
            CouponTemplate.objects.create(name="Welcome tea", kind="gift", gift_name="Tea", valid_days=30)
        )
        for amount in (0, 0, 150, 600):
            with_growth(amount)
        place_everyone()

        response = manager_client.get(reverse("tiers:index"))

        assert [(t.name, t.members) for t in response.context["tiers"]] == [("Member", 2), ("Silver", 1), ("Gold", 1)]
        body = response.text
        assert "A single top-up of ¥1,000.00" in body and "Gold Pass" in body
        assert "200 points" in body and "¥20.00 balance bonus" in body and "Welcome tea" in body
        assert response.context["chart"]["counts"] == [2, 1, 1]
        assert 'id="tier-chart-data"' in body and "vendor/echarts/echarts.min.js" in body

    def test_loads_echarts_only_on_this_page(self, manager_client, ladder):
        assert "echarts" not in manager_client.get(reverse("tiers:rules")).text
        assert "echarts" not in manager_client.get(reverse("members:index")).text

    @pytest.mark.parametrize("client_name", ["owner_client", "manager_client", "auditor_client"])
    def test_opens_for_back_office_roles(self, request, client_name, ladder):
        assert request.getfixturevalue(client_name).get(reverse("tiers:index")).status_code == 200

    def test_is_closed_to_cashiers(self, cashier_client, ladder):
        assert cashier_client.get(reverse("tiers:index")).status_code == 403

    def test_auditors_read_without_edit_links(self, auditor_client, ladder):
        body = auditor_client.get(reverse("tiers:index")).text

        assert reverse("tiers:tier-create") not in body and reverse("tiers:tier-edit", args=[ladder[1].pk]) not in body

    def test_reads_the_same_number_of_queries_however_many_tiers(self, manager_client, ladder):
        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                manager_client.get(reverse("tiers:index"))
            return len(captured)

        manager_client.get(reverse("tiers:index"))  # the first request of a session reads more
        few = queries()
        for rank in (3, 4, 5):
            tier = Tier.objects.create(name=f"T{rank}", rank=rank, threshold=rank * 1_000)
            tier.plans.add(PaidPlan.objects.create(name=f"P{rank}", price_fen=100, duration="month"))

        assert queries() == few


class TestTierPreview:
    def test_shows_who_would_move_and_writes_nothing(self, manager_client, ladder, worker):
        for amount in (600, 1_200, 1_500):
            with_growth(amount)
        place_everyone()
        before = written()

        with worker():
            page = manager_client.post(reverse("tiers:tier-create"), TIER)
        response = polled(manager_client, page)

        assert page.status_code == 200 and 'data-status="pending"' in page.text
        assert response.status_code == 200 and "2 members from Gold to Platinum" in response.text
        assert [(m.source.name, m.target.name, m.count, m.anyway) for m in response.context["moves"]] == [
            ("Gold", "Platinum", 2, 0)
        ]
        assert written() == before

    def test_save_after_the_preview_creates_the_tier_with_an_audit_record(self, manager_client, manager, ladder):
        preview = manager_client.post(reverse("tiers:tier-create"), TIER)
        based_on = preview.context["form"]["based_on"].value()

        response = manager_client.post(reverse("tiers:tier-create"), TIER | {"based_on": based_on, "confirmed": "1"})

        assert response.status_code == 302
        tier = Tier.objects.get(rank=3)
        assert (tier.name, tier.threshold, tier.colour, tier.icon) == ("Platinum", 1_000, "#5b8def", "gem")
        event = tier.events.select_related("pgh_context").get()  # type: ignore[attr-defined]
        assert (
            event.pgh_context.metadata | {"user": manager.user.pk, "action": "tier_save"} == event.pgh_context.metadata
        )

    def test_a_confirmation_made_on_another_ladder_is_previewed_again(self, manager_client, ladder):
        response = manager_client.post(
            reverse("tiers:tier-create"), TIER | {"based_on": "an-older-ladder", "confirmed": "1"}
        )

        assert response.status_code == 200 and response.context["preview"].stale
        assert not Tier.objects.filter(rank=3).exists()

    def test_a_rename_by_someone_else_since_the_preview_makes_the_confirmation_stale(self, manager_client, ladder):
        _base, silver, _gold = ladder
        data = TIER | {"name": "Silver", "rank": "1", "threshold": "100", "colour": "#a0a0a0", "description": "Mine"}
        preview = manager_client.post(reverse("tiers:tier-edit", args=[silver.pk]), data)
        based_on = preview.context["form"]["based_on"].value()
        silver.name = "Silver Star"  # another manager's change, which places nobody differently
        catalogue.tier_save(tier=silver, plans=[], gift_coupons=[])

        response = manager_client.post(
            reverse("tiers:tier-edit", args=[silver.pk]), data | {"based_on": based_on, "confirmed": "1"}
        )

        assert response.status_code == 200 and response.context["preview"].stale
        assert ("Tier name", "Silver Star", "Silver") in response.context["preview"].changes
        silver.refresh_from_db()
        assert (silver.name, silver.description) == ("Silver Star", "")

    def test_the_save_checks_the_version_inside_its_own_transaction(self, ladder):
        _base, silver, _gold = ladder
        services.tier_rules()
        version = selectors.ladder_version()
        TierRules.objects.filter(pk=1).update(hold_months=3)  # saved between the view's check and the save
        silver.description = "Mine"

        with pytest.raises(catalogue.TierStale):
            catalogue.tier_save(tier=silver, plans=[], gift_coupons=[], based_on=version)

        silver.refresh_from_db()
        assert silver.description == ""

    def test_change_goes_back_to_the_form_with_the_values(self, manager_client, ladder):
        response = manager_client.post(reverse("tiers:tier-create"), TIER | {"edit": "1", "confirmed": "1"})

        assert response.context["preview"] is None and 'value="Platinum"' in response.text
        assert not Tier.objects.filter(rank=3).exists()

    def test_a_change_of_the_name_only_moves_nobody_and_evaluates_nobody(self, manager_client, ladder, monkeypatch):
        _base, silver, _gold = ladder
        monkeypatch.setattr(services, "tiers_simulate", lambda **kw: pytest.fail("simulated"))
        data = TIER | {"name": "Silver Plus", "rank": "1", "threshold": "100", "colour": "#a0a0a0"}

        response = manager_client.post(reverse("tiers:tier-edit", args=[silver.pk]), data)

        preview = response.context["preview"]
        assert preview.simulation is None and ("Tier name", "Silver", "Silver Plus") in preview.changes
        assert "This change moves nobody" in response.text

    def test_simulates_the_paid_plans_being_edited(self, manager_client, owner, ladder, worker):
        _base, silver, _gold = ladder
        plan = PaidPlan.objects.create(name="Silver Pass", price_fen=9_900, duration="year")
        member = with_growth(0)
        members_services.plan_grant(
            member=member, plan=plan, by=owner.user, source=PlanPeriod.Source.MANUAL, reason="test"
        )
        data = TIER | {"name": "Silver", "rank": "1", "threshold": "100", "colour": "#a0a0a0", "plans": [plan.pk]}

        with worker():
            page = manager_client.post(reverse("tiers:tier-edit", args=[silver.pk]), data)

        assert "1 member from Member to Silver" in polled(manager_client, page).text
        assert not silver.plans.exists()

    def test_lowering_a_threshold_moves_members_up(self, manager_client, ladder, worker):
        _base, _silver, gold = ladder
        for amount in (300, 450):
            with_growth(amount)
        place_everyone()
        data = TIER | {"name": "Gold", "rank": "2", "threshold": "400", "colour": "#d4a017"}

        with worker():
            response = manager_client.post(reverse("tiers:tier-edit", args=[gold.pk]), data)

        assert "1 member from Silver to Gold" in polled(manager_client, response).text
        assert ("Growth value to reach it", "500", "400") in response.context["preview"].changes


class TestSimulation:
    """The preview's dry run over every member happens in a worker; the page polls it until it is done."""

    def test_the_page_polls_until_the_worker_has_run_it(self, manager_client, ladder):
        with_growth(600)
        page = manager_client.post(reverse("tiers:tier-create"), TIER)
        simulation = page.context["preview"].simulation

        waiting = manager_client.get(reverse("tiers:simulation", args=[simulation.pk]))
        services.tier_simulation_run(simulation_id=simulation.pk)
        done = manager_client.get(reverse("tiers:simulation", args=[simulation.pk]))

        assert f'hx-get="{reverse("tiers:simulation", args=[simulation.pk])}"' in waiting.text
        assert "Evaluating every member" in waiting.text
        assert 'data-status="done"' in done.text and "hx-get" not in done.text
        assert "1 member from Member to Gold" in done.text and "Evaluated 1 member" in done.text

    def test_a_message_delivered_twice_leaves_the_finished_simulation_as_it_was(self, manager_client, ladder):
        with_growth(600)
        simulation = manager_client.post(reverse("tiers:tier-create"), TIER).context["preview"].simulation
        first = services.tier_simulation_run(simulation_id=simulation.pk)
        with_growth(600)  # would change the figures if it ran again

        again = services.tier_simulation_run(simulation_id=simulation.pk)

        assert again.moves == first.moves and again.finished_at == first.finished_at

    def test_a_simulation_a_dead_worker_left_running_runs_again(self, manager_client, ladder):
        with_growth(600)
        simulation = manager_client.post(reverse("tiers:tier-create"), TIER).context["preview"].simulation
        TierSimulation.objects.filter(pk=simulation.pk).update(status=TierSimulation.Status.RUNNING)

        done = services.tier_simulation_run(simulation_id=simulation.pk)

        assert done.status == TierSimulation.Status.DONE and done.moves  # Member → Gold, as the draft places them

    def test_a_failure_is_shown_and_polling_stops(self, manager_client, ladder, monkeypatch):
        simulation = manager_client.post(reverse("tiers:tier-create"), TIER).context["preview"].simulation
        monkeypatch.setattr(services, "tiers_simulate", lambda **kw: 1 / 0)

        with pytest.raises(ZeroDivisionError):
            services.tier_simulation_run(simulation_id=simulation.pk)
        response = manager_client.get(reverse("tiers:simulation", args=[simulation.pk]))

        simulation.refresh_from_db()
        assert simulation.status == TierSimulation.Status.FAILED and "ZeroDivisionError" in simulation.error
        assert "The simulation failed" in response.text and "hx-get" not in response.text

    def test_a_new_tier_is_named_as_the_draft_names_it(self, manager_client, ladder):
        with_growth(1_200)
        place_everyone()
        simulation = manager_client.post(reverse("tiers:tier-create"), TIER).context["preview"].simulation
        services.tier_simulation_run(simulation_id=simulation.pk)

        response = manager_client.get(reverse("tiers:simulation", args=[simulation.pk]))

        [move] = response.context["moves"]
        assert (move.source.name, move.target.name, move.target.colour, move.count) == (
            "Gold",
            "Platinum",
            "#5b8def",
            1,
        )

    def test_week_old_simulations_are_cleared_when_a_new_one_starts(self, manager_client, ladder):
        old = manager_client.post(reverse("tiers:tier-create"), TIER).context["preview"].simulation
        TierSimulation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))

        manager_client.post(reverse("tiers:tier-create"), TIER)

        assert not TierSimulation.objects.filter(pk=old.pk).exists() and TierSimulation.objects.count() == 1

    def test_is_closed_to_cashiers_and_auditors(self, manager_client, cashier_client, auditor_client, ladder):
        simulation = manager_client.post(reverse("tiers:tier-create"), TIER).context["preview"].simulation
        url = reverse("tiers:simulation", args=[simulation.pk])

        assert cashier_client.get(url).status_code in (302, 403)
        assert auditor_client.get(url).status_code in (302, 403)


class TestTierForm:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"rank": "2"}, "rank"),  # Gold has it
            ({"rank": "1.5"}, "rank"),
            ({"rank": FULL_WIDTH_1}, "rank"),
            ({"colour": "red"}, "colour"),
            ({"colour": "#12345"}, "colour"),
            ({"colour": "#GGGGGG"}, "colour"),
            ({"threshold": "400"}, "threshold"),  # not above Gold's 500
            ({"threshold": "-1"}, "threshold"),
            ({"name": "gold"}, "name"),
            ({"name": ""}, "name"),
            ({"top_up_single": "1e3"}, "top_up_single"),
            ({"top_up_total": "0"}, "top_up_total"),
            ({"gift_bonus": "-1"}, "gift_bonus"),
            ({"gift_points": "ten"}, "gift_points"),
            ({"icon": "skull"}, "icon"),
        ],
    )
    def test_refuses_bad_input_with_a_message_and_changes_nothing(self, owner_client, ladder, changes, field):
        before = written()

        response = owner_client.post(reverse("tiers:tier-create"), TIER | changes | {"confirmed": "1"})

        assert response.status_code == 200 and field in response.context["form"].errors
        assert response.context["preview"] is None and written() == before

    def test_the_base_tier_starts_at_zero(self, owner_client, ladder):
        base = ladder[0]
        data = TIER | {"name": "Member", "rank": "0", "threshold": "10"}

        response = owner_client.post(reverse("tiers:tier-edit", args=[base.pk]), data)

        assert "starts at 0" in response.context["form"].errors["threshold"][0]

    def test_the_base_tier_keeps_rank_0(self, owner_client, ladder):
        base = ladder[0]
        data = TIER | {"name": "Member", "rank": "9", "threshold": "0"}

        response = owner_client.post(reverse("tiers:tier-edit", args=[base.pk]), data)

        assert "keeps rank 0" in response.context["form"].errors["rank"][0]
        base.refresh_from_db()
        assert base.rank == 0

    def test_says_which_tier_has_the_rank(self, owner_client, ladder):
        response = owner_client.post(reverse("tiers:tier-create"), TIER | {"rank": "2"})

        assert response.context["form"].errors["rank"] == ["Rank 2 is taken by Gold."]

    def test_shows_the_saved_values_in_yuan(self, owner_client, ladder):
        gold = ladder[2]
        gold.top_up_total_fen = 500_000
        gold.save()

        response = owner_client.get(reverse("tiers:tier-edit", args=[gold.pk]))

        assert 'value="5000.00"' in response.text and "A worker evaluates all" in response.text

    def test_auditors_cannot_open_or_post_it(self, auditor_client, ladder):
        assert auditor_client.get(reverse("tiers:tier-create")).status_code == 403
        assert auditor_client.post(reverse("tiers:tier-create"), TIER | {"confirmed": "1"}).status_code == 403
        assert not Tier.objects.filter(rank=3).exists()

    def test_cashiers_cannot_open_it(self, cashier_client, ladder):
        assert cashier_client.get(reverse("tiers:tier-edit", args=[ladder[1].pk])).status_code == 403


class TestTierDelete:
    def test_deletes_a_tier_nobody_stands_on_after_showing_where_members_would_go(self, owner_client, ladder):
        platinum = Tier.objects.create(name="Platinum", rank=3, threshold=1_000)

        page = owner_client.get(reverse("tiers:tier-delete", args=[platinum.pk]))
        response = owner_client.post(reverse("tiers:tier-delete", args=[platinum.pk]))

        assert page.status_code == 200 and page.context["preview"].simulation and page.context["refusal"] is None
        assert response.status_code == 302 and not Tier.objects.filter(pk=platinum.pk).exists()

    def test_refuses_while_a_member_stands_on_it(self, owner_client, ladder):
        silver = ladder[1]
        with_growth(150)
        place_everyone()

        page = owner_client.get(reverse("tiers:tier-delete", args=[silver.pk]))
        owner_client.post(reverse("tiers:tier-delete", args=[silver.pk]))

        assert "1 member stands on Silver" in page.text and 'id="delete-button"' not in page.text
        assert Tier.objects.filter(pk=silver.pk).exists()

    def test_refuses_the_base_tier(self, owner_client, ladder):
        owner_client.post(reverse("tiers:tier-delete", args=[ladder[0].pk]))

        assert Tier.objects.filter(rank=0).exists()

    def test_is_closed_to_auditors(self, auditor_client, ladder):
        assert auditor_client.post(reverse("tiers:tier-delete", args=[ladder[2].pk])).status_code == 403
        assert Tier.objects.filter(pk=ladder[2].pk).exists()


def test_members_count_on_the_base_tier_without_a_tier_row(manager_client, ladder):
    with_growth(0)
    cancelled = with_growth(0)
    Member.objects.filter(pk=cancelled.pk).update(status=Member.Status.CANCELLED)

    response = manager_client.get(reverse("tiers:index"))

    assert response.context["tiers"][0].members == 1
