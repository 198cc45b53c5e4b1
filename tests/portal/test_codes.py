"""One-time codes: 6 digits, valid 5 minutes, used once, locked by the 5th wrong try; only the newest counts."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from members import sms
from members.models import PortalCode
from members.portal_auth import PortalCodeRefused, portal_code_send, portal_code_tries_left, portal_code_verify
from tests.portal.conftest import OTHER_PHONE, PHONE, last_code

IP = "10.1.2.3"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def refusal(code: str, phone: str = PHONE) -> str:
    with pytest.raises(PortalCodeRefused) as caught:
        portal_code_verify(phone, code)
    return caught.value.reason


@pytest.mark.django_db
class TestPortalCodeSend:
    def test_texts_six_digits_to_the_phone(self):
        portal_code_send(PHONE, ip=IP)

        assert [m.phone for m in sms.outbox] == [PHONE]
        assert len(last_code()) == 6 and "5" in sms.outbox[0].text

    def test_keeps_only_a_keyed_hash_of_the_code(self):
        portal_code_send(PHONE, ip=IP)

        row = PortalCode.objects.get()
        assert last_code() not in row.code_hash and len(row.code_hash) == 64
        assert row.expires_at - row.created_at == timedelta(minutes=5) and row.attempts == 0

    def test_a_failed_text_leaves_no_code_behind(self, settings):
        settings.HUIYUAN_SMS_BACKEND = "tests.portal.test_codes.BrokenBackend"

        with pytest.raises(sms.SmsError):
            portal_code_send(PHONE, ip=IP)

        assert not PortalCode.objects.exists()


class BrokenBackend:
    def send(self, phone_e164: str, text: str) -> None:
        raise ConnectionError("provider down")


@pytest.mark.django_db
class TestPortalCodeVerify:
    def test_accepts_the_right_code_once(self):
        portal_code_send(PHONE, ip=IP)
        code = last_code()

        assert portal_code_verify(PHONE, code) is True
        assert refusal(code) == "used"

    def test_refuses_a_code_after_five_minutes(self):
        portal_code_send(PHONE, ip=IP)
        code = last_code()

        with time_machine.travel(timezone.now() + timedelta(minutes=5, seconds=1)):
            assert refusal(code) == "expired"

    def test_accepts_a_code_just_before_five_minutes(self):
        portal_code_send(PHONE, ip=IP)

        with time_machine.travel(timezone.now() + timedelta(minutes=4, seconds=55)):
            assert portal_code_verify(PHONE, last_code()) is True

    def test_counts_wrong_tries_and_the_fifth_locks_the_code(self):
        portal_code_send(PHONE, ip=IP)
        code = last_code()

        results = [portal_code_verify(PHONE, wrong(code)) for _ in range(4)]
        assert results == [False] * 4 and portal_code_tries_left(PHONE) == 1
        assert refusal(wrong(code)) == "locked"

        assert refusal(code) == "locked"
        assert PortalCode.objects.get().attempts == 5

    def test_only_the_newest_code_counts(self):
        portal_code_send(PHONE, ip=IP)
        first = last_code()
        with time_machine.travel(timezone.now() + timedelta(seconds=61)):
            portal_code_send(PHONE, ip=IP)
            second = last_code()

            assert first == second or portal_code_verify(PHONE, first) is False
            assert portal_code_verify(PHONE, second) is True

    def test_a_code_proves_only_its_own_phone_and_purpose(self):
        portal_code_send(PHONE, ip=IP)
        code = last_code()

        assert refusal(code, OTHER_PHONE) == "missing"
        with pytest.raises(PortalCodeRefused):
            portal_code_verify(PHONE, code, purpose=PortalCode.Purpose.PHONE_CHANGE)
        assert portal_code_verify(PHONE, code) is True

    def test_without_a_code_sent_asks_for_one(self):
        assert refusal("123456") == "missing"


def _in_threads(calls: int, attempt) -> list:  # type: ignore[no-untyped-def]
    def run(_: int):  # type: ignore[no-untyped-def]
        try:
            return attempt()
        except PortalCodeRefused as exc:
            return exc.reason
        finally:
            connection.close()  # each thread has its own connection

    with ThreadPoolExecutor(max_workers=calls) as pool:
        return list(pool.map(run, range(calls)))


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_right_tries_exactly_one_signs_in():
    portal_code_send(PHONE, ip=IP)
    code = last_code()

    results = _in_threads(4, lambda: portal_code_verify(PHONE, code))

    assert results.count(True) == 1 and set(results) - {True} <= {"used"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_tries_never_count_past_the_lock():
    portal_code_send(PHONE, ip=IP)
    bad = wrong(last_code())

    results = _in_threads(8, lambda: portal_code_verify(PHONE, bad))

    assert results.count(False) == 4 and results.count("locked") == 4
    assert PortalCode.objects.get().attempts == 5
