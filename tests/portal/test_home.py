"""The portal's home page (the member card, the assets, tier progress and benefits) and the payment code page."""

import re
from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from assets import services as assets_services
from benefits.models import Benefit
from members import portal
from members.models import Member, PaymentCode
from members.portal_selectors import growth_to_fen
from tests.portal.conftest import History, new_key, portal_client
from tests.tiers import Rungs, grow, local, rolling, run_job, set_rules, three_rungs
from tiers import services as tiers_services
from tiers.models import TierRules

pytestmark = pytest.mark.django_db
TIMES = "\N{MULTIPLICATION SIGN}"


def page(client, name: str = "portal:home", **extra) -> str:  # type: ignore[no-untyped-def]
    response = client.get(reverse(name), **extra)
    assert response.status_code == 200
    return str(response.content.decode())


def text(body: str) -> str:
    """The page's words without its markup, whitespace squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@pytest.fixture
def rungs(db: None) -> Rungs:
    return three_rungs(colour="#d4a017")


class TestMemberCard:
    def test_shows_the_member_number_in_groups_with_its_qr_code_and_barcode(self, member_client, member):
        body = page(member_client)

        groups = " ".join(re.findall(r"<span>(\d{1,4})</span>", body.split('class="card-no')[1].split("</div>")[0]))
        assert groups.replace(" ", "") == member.member_no
        assert body.count("<svg") >= 3 and 'class="segno"' in body and 'viewBox="0 0 ' in body

    def test_takes_the_colour_and_name_of_the_member_s_tier(self, member_client, member, rungs):
        tiers_services.tier_set_manual(member=member, tier=rungs.gold, reason="test", staff=None)  # type: ignore[arg-type]

        body = page(member_client)

        assert "--tier: #d4a017; --on-tier: #1d273b" in body and '<span class="tier-chip">Gold</span>' in body

    def test_leads_to_the_payment_code(self, member_client):
        assert f'class="pay-button" href="{reverse("portal:code")}"' in page(member_client)

    def test_tells_a_frozen_member_why_nothing_can_be_spent(self, member_client, member):
        Member.objects.filter(pk=member.pk).update(status=Member.Status.FROZEN)

        assert "Your membership is frozen" in page(member_client)


class TestAssetTiles:
    def test_show_the_balance_with_what_was_paid_in_and_the_bonus(self, member_client, history: History):
        words = text(page(member_client))

        # ¥300 + ¥30 bonus, ¥108 paid from it (principal and bonus pro rata), ¥34 of that refunded
        assert "Balance ¥256.00 Paid in ¥232.73 · Bonus ¥23.27" in words

    def test_show_the_points_and_those_expiring_within_30_days_with_their_last_day(self, member_client, member):
        with time_machine.travel(local(2025, 3, 1), tick=False):
            assets_services.points_earn(
                member=member, points=1_000, idempotency_key=new_key(), expiry="days", expiry_days=10
            )
            assets_services.points_earn(
                member=member, points=200, idempotency_key=new_key(), expiry="days", expiry_days=20
            )
            assets_services.points_earn(member=member, points=50, idempotency_key=new_key())
            words = text(page(member_client))

        # both earnings expire within 30 days: all 1,200 are gone after the later one's last day, 21 March
        assert "Points 1,250 1,200 expiring by 21 Mar" in words

    def test_say_so_when_no_points_expire_soon(self, member_client, member):
        assets_services.points_earn(member=member, points=50, idempotency_key=new_key())

        assert "Points 50 None expiring soon" in text(page(member_client))

    def test_count_the_coupons_usable_now(self, member_client, history: History):
        assert "Coupons 1 ready to use" in text(page(member_client))

    def test_lead_to_their_histories(self, member_client):
        body = page(member_client)

        for name in ("portal:balance", "portal:points", "portal:coupons", "portal:purchases"):
            assert f'href="{reverse(name)}"' in body


class TestTierProgress:
    def test_says_how_much_more_to_spend_to_reach_the_next_tier(self, member_client, member, rungs):
        grow(member, 380)
        tiers_services.tier_upgrade_realtime(member=member, staff=None)

        words = text(page(member_client))

        assert "Silver Growth value 380" in words and "Spend ¥120 more to reach Gold" in words
        assert 'aria-valuenow="70"' in page(member_client)  # 280 of the 400 from Silver to Gold

    @pytest.mark.parametrize(("per_yuan", "sentence"), [(3, "Spend ¥40 more"), (7, "Spend ¥17.15 more")])
    def test_turns_growth_into_money_by_the_rules_rate_rounding_up(
        self, member_client, member, rungs, per_yuan, sentence
    ):
        set_rules(growth_per_yuan=per_yuan)
        grow(member, 380)

        assert f"{sentence} to reach Silver" not in text(page(member_client))  # 380 is past Silver already
        tiers_services.tier_upgrade_realtime(member=member, staff=None)

        assert f"{sentence} to reach Gold" in text(page(member_client))

    def test_counts_growth_points_when_payments_earn_no_growth(self, member_client, member, rungs):
        set_rules(growth_per_yuan=0)
        grow(member, 499)
        tiers_services.tier_upgrade_realtime(member=member, staff=None)

        assert "1 more growth point to reach Gold" in text(page(member_client))

    def test_thanks_a_member_on_the_top_tier(self, member_client, member, rungs):
        grow(member, 600)
        tiers_services.tier_upgrade_realtime(member=member, staff=None)

        body = page(member_client)

        assert "You are on our top tier" in body and 'role="progressbar"' not in body

    def test_reads_in_chinese(self, member_client, member, rungs):
        grow(member, 380)
        tiers_services.tier_upgrade_realtime(member=member, staff=None)
        member_client.cookies["django_language"] = "zh-hans"

        words = text(page(member_client))

        assert "再消费 ¥120 即可升级为Gold" in words and "成长值 380" in words


class TestTierProgressInRollingMode:
    @pytest.fixture
    def on_silver(self, rungs: Rungs, member: Member) -> Member:
        """Silver since September 2024 in a 12-month window evaluated on the 1st: 70 + 40 + 50 growth."""
        rolling(window_months=12, evaluation_day=1)
        grow(member, 70, on=local(2024, 4, 10))
        grow(member, 40, on=local(2024, 9, 10))
        run_job(date(2024, 9, 10))
        grow(member, 50, on=local(2025, 1, 10))
        return member

    def test_says_what_it_takes_by_the_next_evaluation_to_keep_the_tier(self, member_client, on_silver):
        with time_machine.travel(local(2025, 4, 5, 10), tick=False):
            words = text(page(member_client))

        # at the start of 1 May the window counts from 1 May 2024: 40 + 50 of the 100 Silver needs
        assert "Spend ¥10 more by 1 May to keep Silver" in words and "Spend ¥340 more to reach Gold" in words

    def test_says_the_tier_is_kept_when_enough_growth_stays_in_the_window(self, member_client, on_silver):
        grow(on_silver, 30, on=local(2025, 4, 3))

        with time_machine.travel(local(2025, 4, 5, 10), tick=False):
            assert "You keep Silver at the review on 1 May." in text(page(member_client))

    def test_reads_in_chinese(self, member_client, on_silver):
        member_client.cookies["django_language"] = "zh-hans"

        with time_machine.travel(local(2025, 4, 5, 10), tick=False):
            assert "5月1日 前再消费 ¥10 即可保持Silver" in text(page(member_client))

    def test_says_nothing_of_keeping_a_tier_that_is_never_lowered(self, member_client, on_silver):
        set_rules(downgrade=TierRules.Downgrade.NONE)

        with time_machine.travel(local(2025, 4, 5, 10), tick=False):
            assert "to keep Silver" not in text(page(member_client))

    def test_says_nothing_of_keeping_a_tier_still_held_after_it_was_reached(self, member_client, on_silver):
        set_rules(hold_months=12)  # Silver was reached in September 2024: held until September 2025

        with time_machine.travel(local(2025, 4, 5, 10), tick=False):
            assert "to keep Silver" not in text(page(member_client))

    def test_says_nothing_of_keeping_a_tier_staff_set(self, member_client, on_silver, rungs):
        tiers_services.tier_set_manual(member=on_silver, tier=rungs.silver, reason="test", staff=None)  # type: ignore[arg-type]

        with time_machine.travel(local(2025, 4, 5, 10), tick=False):
            assert "to keep Silver" not in text(page(member_client))


class TestBenefits:
    @pytest.fixture
    def benefits(self, rungs: Rungs) -> dict[str, Benefit]:
        silver_price = Benefit.objects.create(kind=Benefit.Kind.DISCOUNT, name="Silver price", discount_percent=95)
        silver_price.tiers.add(rungs.silver)
        member_day = Benefit.objects.create(
            kind=Benefit.Kind.MEMBER_DAY, name="Member day", weekday=2, multiplier_percent=150
        )
        member_day.tiers.add(rungs.silver, rungs.gold)
        double = Benefit.objects.create(
            kind=Benefit.Kind.POINTS_MULTIPLIER, name="Double points", multiplier_percent=200
        )
        double.tiers.add(rungs.gold)
        rungs.gold.gift_points = 500
        rungs.gold.save()
        return {"silver_price": silver_price, "member_day": member_day, "double": double}

    def test_lists_the_current_tier_s_and_what_the_next_tier_adds(self, member_client, member, rungs, benefits):
        tiers_services.tier_set_manual(member=member, tier=rungs.silver, reason="test", staff=None)  # type: ignore[arg-type]

        words = text(page(member_client))

        current, following = words.split("Your benefits")[1].split("With Gold you also get")
        assert "Silver price 5% off" in current and f"Member day every Wednesday · points {TIMES}1.5" in current
        assert "Upgrade gift 500 points" in following and f"Double points points {TIMES}2" in following
        assert "Member day" not in following  # Silver has it already

    def test_reads_discounts_as_chinese_prices_do(self, member_client, member, rungs, benefits):
        tiers_services.tier_set_manual(member=member, tier=rungs.silver, reason="test", staff=None)  # type: ignore[arg-type]
        member_client.cookies["django_language"] = "zh-hans"

        words = text(page(member_client))

        assert "Silver price 9.5折" in words and "每星期三" in words and "升级为Gold还可享受" in words

    def test_are_left_out_when_there_are_none(self, member_client, rungs):
        assert "benefits" not in text(page(member_client))


class TestPaymentCode:
    def test_shows_the_member_s_current_code_as_barcode_digits_in_groups_and_qr_code(self, member_client, member):
        body = page(member_client, "portal:code")

        code = PaymentCode.objects.get(member=member).code
        digits = body.split('class="code-digits')[1].split("</div>")[0]
        assert re.findall(r"<span>(\d+)</span>", digits) == [code[:4], code[4:8], code[8:12], code[12:16], code[16:]]
        assert 'class="segno"' in body and 'preserveAspectRatio="none"' in body

    def test_is_never_kept_by_a_cache_and_reloads_itself_without_javascript(self, member_client):
        response = member_client.get(reverse("portal:code"))

        body = response.content.decode()
        assert "no-store" in response["Cache-Control"]
        assert '<noscript><meta http-equiv="refresh" content="60"></noscript>' in body
        assert f'class="button block" href="{reverse("portal:code")}"' in body  # refresh by hand

    def test_keeps_the_code_for_a_minute_and_counts_the_seconds_down(self, member_client, member):
        start = timezone.now()
        with time_machine.travel(start, tick=False):
            page(member_client, "portal:code")
        first = PaymentCode.objects.get(member=member).code

        with time_machine.travel(start + timedelta(seconds=45), tick=False):
            body = page(member_client, "portal:code")

        assert first in body.replace("</span><span>", "") and 'data-seconds="15"' in body

    def test_gives_a_fresh_code_after_a_minute(self, member_client, member):
        start = timezone.now()
        with time_machine.travel(start, tick=False):
            page(member_client, "portal:code")
        with time_machine.travel(start + timedelta(seconds=61), tick=False):
            page(member_client, "portal:code")

        assert PaymentCode.objects.filter(member=member).count() == 2

    def test_answers_htmx_with_the_code_fragment_alone(self, member_client):
        body = page(member_client, "portal:code", HTTP_HX_REQUEST="true")

        assert "<html" not in body and body.lstrip().startswith('<div id="payment-code"')
        assert f'hx-get="{reverse("portal:code")}"' in body and 'hx-trigger="refresh"' in body

    def test_never_puts_the_code_in_a_link(self, member_client, member):
        body = page(member_client, "portal:code")

        code = PaymentCode.objects.get(member=member).code
        for url in re.findall(r'(?:href|src|hx-get|action)="([^"]*)"', body):
            assert code not in url and code[:8] not in url

    def test_gives_a_frozen_member_no_code(self, member):
        Member.objects.filter(pk=member.pk).update(status=Member.Status.FROZEN)
        member.refresh_from_db()

        body = page(portal_client(member), "portal:code")

        assert "balance cannot be used" in body and not PaymentCode.objects.filter(member=member).exists()


class TestMoneyWords:
    @pytest.mark.parametrize(
        ("growth", "per_yuan", "fen"), [(120, 1, 12_000), (120, 3, 4_000), (120, 7, 1_715), (1, 100, 1), (5, 0, None)]
    )
    def test_growth_to_fen_is_enough_money_rounded_up_to_the_fen(self, growth, per_yuan, fen):
        assert growth_to_fen(growth, per_yuan) == fen

    @pytest.mark.parametrize(("fen", "words"), [(12_000, "¥120"), (1_715, "¥17.15"), (123_456_700, "¥1,234,567")])
    def test_sums_to_spend_drop_empty_fen(self, fen, words):
        assert portal.short_cny(fen) == words

    @pytest.mark.parametrize(("percent", "en", "zh"), [(95, "5% off", "9.5折"), (80, "20% off", "8折")])
    def test_discounts_read_as_each_language_reads_them(self, percent, en, zh):
        from django.utils import translation

        with translation.override("en"):
            assert portal.price_share(percent) == en
        with translation.override("zh-hans"):
            assert portal.price_share(percent) == zh
