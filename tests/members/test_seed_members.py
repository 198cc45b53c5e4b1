"""seed_members loads realistic synthetic members fast; what it writes must look like what the services
write (valid numbers and phones, pinyin as member_register computes it, consistent paid members)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from members.models import Member, PlanPeriod, Store
from members.seeding import members_seed, seed_phone
from members.services import is_valid_member_no, member_no_next, name_pinyin, normalise_phone
from reports import services as reports_services


@pytest.fixture
def seeded(db) -> list[Member]:
    members_seed(count=2_000, stores=3, seed=7)
    return list(Member.objects.order_by("pk"))


class TestSeedPhone:
    def test_gives_distinct_valid_mobile_numbers(self):
        phones = [seed_phone(n) for n in range(1, 20_001)]

        assert len(set(phones)) == len(phones)
        assert all(normalise_phone(p) == p for p in phones[:500])


@pytest.mark.django_db
class TestMembersSeed:
    def test_adds_the_number_asked_for(self, seeded):
        assert len(seeded) == 2_000

    def test_gives_valid_unique_member_numbers_and_moves_the_sequence_past_them(self, seeded):
        numbers = [m.member_no for m in seeded]

        following = member_no_next()

        assert all(is_valid_member_no(n) for n in numbers) and len(set(numbers)) == len(numbers)
        assert following > max(numbers)

    def test_gives_valid_unique_phones_in_e164(self, seeded):
        phones = [str(m.phone) for m in seeded if m.phone]

        assert len(set(phones)) == len(phones) > 1_900
        assert all(normalise_phone(p) == p for p in phones)

    def test_keeps_pinyin_as_member_register_does(self, seeded):
        named = [m for m in seeded if m.name]

        assert named and all(name_pinyin(m.name) == (m.name_pinyin, m.name_initials) for m in named)

    def test_spreads_members_over_the_seed_stores_and_three_years(self, seeded):
        now = timezone.now()

        stores = {m.registered_store_id for m in seeded}

        assert stores == set(Store.objects.filter(code__startswith="SEED-").values_list("pk", flat=True))
        assert len(stores) == 3
        assert all(now - timedelta(days=3 * 365 + 1) < m.registered_at <= now for m in seeded)

    def test_mixes_types_statuses_channels_and_consent(self, seeded):
        assert {m.member_type for m in seeded} == set(Member.Type.values)
        assert {m.status for m in seeded} == set(Member.Status.values)
        assert {m.channel for m in seeded} >= {"store", "portal", "referral", "campaign", "import"}
        assert 0.3 < sum(m.marketing_consent for m in seeded) / len(seeded) < 0.6
        assert 0 < sum(bool(m.external_id) for m in seeded) < 200

    def test_leaves_cancelled_members_pseudonymised(self, seeded):
        cancelled = [m for m in seeded if m.status == Member.Status.CANCELLED]

        assert cancelled
        assert all(
            (m.phone, m.name, m.email, m.birthday, m.marketing_consent) == (None, "", "", None, False)
            for m in cancelled
        )

    def test_gives_every_paid_member_a_current_period(self, seeded):
        paid = {m.pk for m in seeded if m.member_type == Member.Type.PAID}

        covered = set(PlanPeriod.objects.filter(ends_at__gt=timezone.now()).values_list("member_id", flat=True))

        assert paid and paid == covered

    def test_leaves_nothing_for_the_nightly_plans_job_to_change(self, seeded):
        run, _ran = reports_services.job_execute(
            "plans_expire", business_date=reports_services.last_closed_business_date()
        )

        assert run.rows_changed == 0

    def test_writes_no_history_events(self, seeded):
        assert not seeded[0].events.exists()  # type: ignore[attr-defined]

    def test_a_second_load_adds_more_without_collisions(self, seeded):
        result = members_seed(count=500, stores=3, seed=7)

        assert (result.created, Member.objects.count()) == (500, 2_500)

    def test_skips_rows_whose_phone_a_real_member_has(self, db):
        from members.services import member_register

        last = int(member_no_next()[:-1]) - 100_000_000
        # the load will number its rows from last + 4 on (three registrations come first)
        taken = [member_register(phone=seed_phone(last + 4 + i)) for i in range(3)]

        result = members_seed(count=5, stores=1, seed=1)

        assert result.created == 2 and Member.objects.count() == 5
        assert all(Member.objects.get(phone=m.phone) == m for m in taken)


@pytest.mark.django_db
class TestSeedMembersCommand:
    def test_reports_what_it_added(self):
        out = StringIO()

        call_command("seed_members", "--count", "50", "--stores", "2", stdout=out)

        assert "50 members added" in out.getvalue() and Member.objects.count() == 50

    def test_refuses_a_count_below_one(self):
        with pytest.raises(CommandError):
            call_command("seed_members", "--count", "0")
