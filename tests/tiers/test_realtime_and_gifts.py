"""Real-time upgrades inside the purchase or top-up that earns them, and the upgrade gift pack: points, balance bonus
and coupons through the ledger services, at most once per member and tier, also when eight tills upgrade one member
at the same moment."""

import importlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import pytest
from django.db import connection, transaction
from django.urls import reverse

from assets import services as assets_services
from assets.models import Account, Asset, Coupon, CouponTemplate, LedgerTransaction, LoyaltySettings
from members.models import Member, PaidPlan, Staff
from members.services import member_freeze
from reports.models import JobRun
from tests.factories import MemberFactory
from tests.tiers import (
    Rungs,
    at,
    claw_back,
    grow,
    local,
    run_job,
    set_rules,
    three_rungs,
    tier_of,
    top_up,
    written,
)
from tiers import services as tiers_services
from tiers.models import Tier, TierChange, TierGift, TierRules

Kind = LedgerTransaction.Kind
MIGRATED = importlib.import_module("assets.migrations.0003_ledger_invariants")


@pytest.fixture
def welcome_coupon(db: None) -> CouponTemplate:
    return CouponTemplate.objects.create(
        name="20 off 100",
        kind=CouponTemplate.Kind.CASH_OFF,
        value_fen=2_000,
        threshold_fen=10_000,
        validity=CouponTemplate.Validity.RELATIVE,
        valid_days=30,
    )


@pytest.fixture
def rungs(welcome_coupon: CouponTemplate) -> Rungs:
    """Gold's gift pack: 200 points, 10.00 balance bonus and a coupon; Silver has none."""
    rungs = three_rungs(gift_points=200, gift_bonus_fen=1_000)
    rungs.gold.gift_coupons.add(welcome_coupon)
    return rungs


@pytest.fixture
def member(db: None) -> Member:
    with at(local(2024, 1, 2)):
        return MemberFactory.create()


@dataclass(frozen=True)
class Purchase:
    growth: LedgerTransaction
    change: TierChange | None


def purchase(member: Member, growth: int, *, order: str) -> Purchase:
    """A counter purchase as one ledger unit: it earns growth value and, if that qualifies, the upgrade."""
    outcome: list[Purchase] = []

    def unit() -> LedgerTransaction:
        addition = assets_services.growth_add(member=member, amount=growth, idempotency_key=f"{order}:growth")
        outcome[:] = [Purchase(addition, tiers_services.tier_upgrade_realtime(member=member))]
        return addition

    assets_services.ledger_unit(
        unit, member=member, idempotency_key=order, scope="till:1", operation="purchase", request={"order": order}
    )
    return outcome[-1]


def balances(member: Member) -> dict[str, int]:
    return dict(Account.objects.filter(member=member).values_list("asset", "balance"))


def gift_points_given(member: Member) -> int:
    return LedgerTransaction.objects.filter(member=member, kind=Kind.POINTS_EARN, actor__startswith="tier:").count()


class TestTierUpgradeRealtime:
    def test_upgrades_inside_the_purchase_that_earned_it(self, rungs: Rungs, member: Member) -> None:
        with at(local(2025, 3, 10, 15)):
            change = purchase(member, 600, order="order-1").change

        assert tier_of(member) == rungs.gold
        assert change is not None
        assert (change.from_tier_id, change.to_tier_id, change.reason) == (rungs.base.pk, rungs.gold.pk, "growth")
        assert (change.business_date, change.job_run_id) == (date(2025, 3, 10), None)

    def test_a_top_up_on_the_stored_value_route_upgrades_at_once(self, rungs: Rungs, member: Member) -> None:
        Tier.objects.filter(pk=rungs.silver.pk).update(top_up_single_fen=50_000)

        with at(local(2025, 3, 10, 15)), transaction.atomic():
            top_up(member, 50_000)
            change = tiers_services.tier_upgrade_realtime(member=member)

        assert change is not None and (change.to_tier_id, change.reason) == (rungs.silver.pk, "top_up")

    def test_does_nothing_when_upgrades_wait_for_the_evaluation(self, rungs: Rungs, member: Member) -> None:
        set_rules(upgrade_timing=TierRules.Timing.EVALUATION)

        with at(local(2025, 3, 10, 15)):
            change = purchase(member, 600, order="order-1").change

        assert (change, tier_of(member)) == (None, rungs.base)
        run_job(date(2025, 3, 10))
        assert tier_of(member) == rungs.gold  # the job does it

    def test_never_downgrades(self, rungs: Rungs, member: Member) -> None:
        set_rules(downgrade=TierRules.Downgrade.QUALIFIED)
        with at(local(2025, 3, 10, 15)):
            bought = purchase(member, 600, order="order-1")
        claw_back(bought.growth, on=local(2025, 3, 11))

        with at(local(2025, 3, 11, 15)):
            change = tiers_services.tier_upgrade_realtime(member=member)

        assert (change, tier_of(member)) == (None, rungs.gold)

    def test_a_purchase_refused_after_the_upgrade_undoes_it_and_its_gift(self, rungs: Rungs, member: Member) -> None:
        def unit() -> LedgerTransaction:
            addition = assets_services.growth_add(member=member, amount=600, idempotency_key="order-1:growth")
            tiers_services.tier_upgrade_realtime(member=member)
            raise assets_services.InsufficientBalance(available="0.00", wanted="600.00")  # paying fails after it
            return addition

        with at(local(2025, 3, 10, 15)), pytest.raises(assets_services.InsufficientBalance):
            assets_services.ledger_unit(
                unit, member=member, idempotency_key="order-1", scope="till:1", operation="purchase", request={}
            )

        assert written() == (0, 0, 0)
        assert balances(member).get(Asset.POINTS, 0) == balances(member).get(Asset.GROWTH, 0) == 0


class TestGiftPack:
    def test_comes_with_the_upgrade_through_the_ledgers(
        self, rungs: Rungs, member: Member, welcome_coupon: CouponTemplate
    ) -> None:
        with at(local(2025, 3, 10, 15)):
            change = purchase(member, 600, order="order-1").change

        gift = TierGift.objects.get(member=member)
        coupon = Coupon.objects.get(member=member)
        assert (gift.tier, gift.change) == (rungs.gold, change)
        assert (balances(member)[Asset.POINTS], balances(member)[Asset.BONUS]) == (200, 1_000)
        assert (coupon.template, coupon.channel) == (welcome_coupon, Coupon.Channel.TIER_GIFT)
        assert set(gift.details) == {"points_tx", "bonus_tx", "coupons", "coupons_skipped"}
        assert gift.details["coupons"] == [coupon.pk]
        assert assets_services.ledgers_verify().ok

    def test_is_given_once_per_member_and_tier_also_after_down_and_up_again(self, rungs: Rungs, member: Member) -> None:
        set_rules(downgrade=TierRules.Downgrade.QUALIFIED)
        with at(local(2025, 3, 10, 15)):
            first = purchase(member, 600, order="order-1")
        claw_back(first.growth, on=local(2025, 3, 11))
        run_job(date(2025, 3, 11))
        down = tier_of(member)

        with at(local(2025, 3, 12, 15)):
            again = purchase(member, 600, order="order-2").change

        assert (down, tier_of(member)) == (rungs.base, rungs.gold)
        assert again is not None and again.to_tier == rungs.gold
        assert TierGift.objects.filter(member=member).count() == 1
        assert (gift_points_given(member), Coupon.objects.filter(member=member).count()) == (1, 1)
        assert assets_services.ledgers_verify().ok

    def test_each_tier_reached_gives_its_own_pack(self, rungs: Rungs, member: Member) -> None:
        Tier.objects.filter(pk=rungs.silver.pk).update(gift_points=50)

        with at(local(2025, 3, 10, 15)):
            purchase(member, 150, order="order-1")
            purchase(member, 400, order="order-2")

        assert sorted(TierGift.objects.filter(member=member).values_list("tier__rank", flat=True)) == [1, 2]
        assert balances(member)[Asset.POINTS] == 250

    def test_a_tier_without_a_pack_records_no_gift(self, rungs: Rungs, member: Member) -> None:
        with at(local(2025, 3, 10, 15)):
            change = purchase(member, 150, order="order-1").change

        assert change is not None and change.to_tier == rungs.silver
        assert not TierGift.objects.exists()

    def test_the_nightly_job_gives_it_with_the_change_it_made(self, rungs: Rungs, member: Member) -> None:
        grow(member, 600, on=local(2025, 3, 10))

        run = run_job(date(2025, 3, 10))

        gift = TierGift.objects.get(member=member)
        assert gift.change is not None and gift.change.job_run == run
        assert gift_points_given(member) == 1

    def test_a_manual_move_up_gives_it_too(self, rungs: Rungs, member: Member, manager: Staff) -> None:
        with at(local(2025, 3, 10, 15)):
            tiers_services.tier_set_manual(member=member, tier=rungs.gold, reason="VIP guest", staff=manager)

        assert TierGift.objects.get(member=member).change == TierChange.objects.get(member=member)
        assert balances(member)[Asset.POINTS] == 200

    def test_a_coupon_out_of_stock_is_skipped_and_the_rest_still_given(
        self, rungs: Rungs, member: Member, welcome_coupon: CouponTemplate
    ) -> None:
        CouponTemplate.objects.filter(pk=welcome_coupon.pk).update(stock=0)

        with at(local(2025, 3, 10, 15)):
            purchase(member, 600, order="order-1")

        gift = TierGift.objects.get(member=member)
        assert (gift.details["coupons"], gift.details["coupons_skipped"]) == ([], [welcome_coupon.pk])
        assert balances(member)[Asset.POINTS] == 200

    def test_a_frozen_members_upgrade_does_not_stop_the_nightly_job(self, rungs: Rungs) -> None:
        with at(local(2024, 1, 2)):
            frozen, other = MemberFactory.create_batch(2)
        for person in (frozen, other):
            grow(person, 600, on=local(2025, 3, 10))
        member_freeze(member=frozen, by=None, reason="card reported lost")

        run = run_job(date(2025, 3, 10))

        assert run.status == JobRun.Status.SUCCEEDED
        assert (tier_of(frozen), tier_of(other)) == (rungs.gold, rungs.gold)


def race(work: Callable[[int], TierChange | None], *, threads: int = 8) -> list[TierChange | None]:
    """work(0) … work(threads - 1) at once, each on its own connection, released together by a barrier."""
    barrier = threading.Barrier(threads)

    def run(n: int) -> TierChange | None:
        try:
            barrier.wait(timeout=30)
            return work(n)
        finally:
            connection.close()  # each thread has its own connection; leave none open for the flush

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


@pytest.mark.django_db(transaction=True)
class TestConcurrentUpgrades:
    @pytest.fixture(autouse=True)
    def gold(self) -> Tier:
        # the flush before a transactional test removed what the migrations made: system accounts, settings, rules
        for asset, code in MIGRATED.SYSTEM_ACCOUNTS:
            Account.objects.get_or_create(member=None, asset=asset, code=code)
        LoyaltySettings.objects.get_or_create(pk=1)
        set_rules(upgrade_timing=TierRules.Timing.REALTIME)
        tiers_services.base_tier()
        return Tier.objects.create(name="Gold", rank=1, threshold=100, gift_points=200)

    def test_eight_tills_upgrading_one_member_at_once_give_one_upgrade_and_one_gift_pack(self) -> None:
        member = MemberFactory.create()
        grow(member, 1)  # the member's accounts exist before the race

        # each till's purchase adds enough growth on its own to reach Gold
        changes = race(lambda n: purchase(Member.objects.get(pk=member.pk), 100, order=f"order-{n}").change)

        assert sum(change is not None for change in changes) == 1
        assert TierChange.objects.filter(member=member).count() == 1
        assert TierGift.objects.filter(member=member).count() == 1
        assert gift_points_given(member) == 1
        assert (balances(member)[Asset.GROWTH], balances(member)[Asset.POINTS]) == (801, 200)
        assert assets_services.ledgers_verify().ok

    def test_eight_upgrades_racing_on_growth_already_earned_give_one_change_and_one_gift(self) -> None:
        member = MemberFactory.create()
        tiers_services.tier_upgrade_realtime(member=member)  # nothing to upgrade yet: it makes the tier row
        grow(member, 150)  # committed before the race: every racer sees enough for Gold

        def upgrade(_n: int) -> TierChange | None:
            with transaction.atomic():
                return tiers_services.tier_upgrade_realtime(member=Member.objects.get(pk=member.pk))

        changes = race(upgrade)

        assert sum(change is not None for change in changes) == 1
        assert TierGift.objects.filter(member=member).count() == 1
        assert (gift_points_given(member), balances(member)[Asset.POINTS]) == (1, 200)
        assert assets_services.ledgers_verify().ok


class TestPlanGrantedAtTheCounterOrInTheOffice:
    """A paid plan's tier applies as soon as the plan is granted, with the gift pack, whatever the upgrade timing."""

    @pytest.mark.parametrize("timing", [TierRules.Timing.REALTIME, TierRules.Timing.EVALUATION])
    def test_granting_a_plan_in_the_office_moves_the_member_at_once(
        self, manager_client, manager: Staff, rungs: Rungs, timing: str
    ) -> None:
        set_rules(upgrade_timing=timing)
        plan = PaidPlan.objects.create(name="Gold Pass", price_fen=19_900, duration=PaidPlan.Duration.YEAR)
        rungs.gold.plans.add(plan)
        member = MemberFactory.create()
        grow(member, 150)  # Silver by growth, not yet applied

        response = manager_client.post(
            reverse("members:member-grant-plan", args=[member.member_no]), {"plan": plan.pk, "reason": "Gift"}
        )

        assert response.status_code == 302
        assert tier_of(member) == rungs.gold
        change = TierChange.objects.get(member=member)
        assert (change.reason, change.staff_id) == (TierChange.Reason.PAID_PLAN, manager.pk)
        assert TierGift.objects.filter(member=member, tier=rungs.gold).count() == 1

    def test_growth_alone_still_waits_for_the_evaluation(self, rungs: Rungs) -> None:
        set_rules(upgrade_timing=TierRules.Timing.EVALUATION)
        member = MemberFactory.create()
        grow(member, 600)

        assert tiers_services.tier_plan_started(member=member) is None
        assert tier_of(member) == rungs.base

    def test_a_refused_grant_moves_nobody(self, manager_client, rungs: Rungs) -> None:
        plan = PaidPlan.objects.create(name="Gold Pass", price_fen=19_900, duration=PaidPlan.Duration.YEAR)
        rungs.gold.plans.add(plan)
        member = MemberFactory.create(status=Member.Status.CANCELLED)

        manager_client.post(
            reverse("members:member-grant-plan", args=[member.member_no]), {"plan": plan.pk, "reason": "x"}
        )

        assert not TierChange.objects.filter(member=member).exists() and not member.plan_periods.exists()
