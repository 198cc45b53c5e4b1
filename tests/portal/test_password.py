"""The optional password: set on the Me page, then phone + password signs in, rate limited like codes."""

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import PortalPassword
from members.portal_auth import portal_password_set
from tests.factories import MemberFactory
from tests.portal.conftest import TYPED, portal_client, portal_member_id, sign_in_by_code

pytestmark = pytest.mark.django_db
SECRET = "plum-blossom-2046"
WRONG_PASSWORD = "Wrong phone number or password."


def password_login(client: Client, password: str, phone: str = TYPED):  # type: ignore[no-untyped-def]
    return client.post(reverse("portal:login-password"), {"phone": phone, "password": password})


@pytest.fixture
def with_password(member):
    portal_password_set(member=member, password=SECRET)
    return member


class TestSetPassword:
    def test_right_after_a_code_sign_in_no_current_password_is_asked(self, client, member):
        sign_in_by_code(client)
        assert 'name="current_password"' not in client.get(reverse("portal:me")).content.decode()

        response = client.post(reverse("portal:password"), {"new_password": SECRET, "new_password_again": SECRET})

        assert response.status_code == 302 and response["Location"] == reverse("portal:me")
        stored = PortalPassword.objects.get(member=member).password
        assert stored.startswith("argon2") and SECRET not in stored
        assert portal_member_id(client) == member.pk  # this session stays

    def test_later_the_current_password_is_needed(self, client, with_password):
        sign_in_by_code(client)

        with time_machine.travel(timezone.now() + timedelta(minutes=16)):
            wrong = client.post(
                reverse("portal:password"),
                {
                    "current_password": "nope-nope",
                    "new_password": "new-" + SECRET,
                    "new_password_again": "new-" + SECRET,
                },
            )
            right = client.post(
                reverse("portal:password"),
                {"current_password": SECRET, "new_password": "new-" + SECRET, "new_password_again": "new-" + SECRET},
            )

        assert wrong.status_code == 200 and "This is not your current password." in wrong.content.decode()
        assert right.status_code == 302

    @pytest.mark.parametrize("weak", ["short1", "12345678901", "password123"])
    def test_weak_passwords_are_refused(self, client, member, weak):
        sign_in_by_code(client)

        response = client.post(reverse("portal:password"), {"new_password": weak, "new_password_again": weak})

        assert response.status_code == 200 and response.context["password_form"].errors["new_password"]
        assert not PortalPassword.objects.exists()

    def test_the_two_passwords_must_match(self, client, member):
        sign_in_by_code(client)

        response = client.post(reverse("portal:password"), {"new_password": SECRET, "new_password_again": SECRET + "x"})

        assert "The two passwords differ." in response.content.decode()

    def test_a_new_password_signs_out_other_devices(self, client, member):
        other_device = portal_client(member)
        sign_in_by_code(client)

        client.post(reverse("portal:password"), {"new_password": SECRET, "new_password_again": SECRET})

        assert client.get(reverse("portal:home")).status_code == 200
        assert other_device.get(reverse("portal:home")).status_code == 302


class TestPasswordLogin:
    def test_signs_in_with_phone_and_password(self, client, with_password):
        response = password_login(client, SECRET)

        assert response.status_code == 302 and response["Location"] == reverse("portal:home")
        assert portal_member_id(client) == with_password.pk

    def test_one_message_for_every_failure(self, client, with_password):
        no_password = MemberFactory.create(phone="+8613700137000")

        answers = {
            password_login(client, "not-it-at-all").context["form"].non_field_errors()[0],
            password_login(client, SECRET, "139 0013 9000").context["form"].non_field_errors()[0],  # nobody's
            password_login(client, SECRET, str(no_password.phone)).context["form"].non_field_errors()[0],
        }

        assert answers == {WRONG_PASSWORD} and portal_member_id(client) is None

    def test_five_wrong_passwords_lock_the_number_for_a_while(self, with_password):
        client = Client(REMOTE_ADDR="10.1.1.1")
        for _ in range(5):
            password_login(client, "not-it-at-all")

        locked = password_login(Client(REMOTE_ADDR="10.2.2.2"), SECRET)

        assert locked.status_code == 429 and "Too many wrong passwords" in locked.content.decode()
        with time_machine.travel(timezone.now() + timedelta(minutes=16)):
            assert password_login(client, SECRET).status_code == 302

    def test_twenty_wrong_passwords_from_one_address_lock_it(self, with_password):
        client = Client(REMOTE_ADDR="10.1.1.1")
        for i in range(20):
            password_login(client, "not-it-at-all", f"137 0000 {i:04d}")

        assert password_login(client, SECRET).status_code == 429
        assert password_login(Client(REMOTE_ADDR="10.3.3.3"), SECRET).status_code == 302

    def test_a_right_password_clears_the_count(self, client, with_password):
        for _ in range(4):
            password_login(client, "not-it-at-all")
        password_login(client, SECRET)
        client.post(reverse("portal:logout"))

        for _ in range(4):
            password_login(client, "not-it-at-all")

        assert password_login(client, SECRET).status_code == 302

    def test_a_cancelled_membership_cannot_sign_in_with_its_password(self, client, with_password):
        type(with_password).objects.filter(pk=with_password.pk).update(status="cancelled")

        response = password_login(client, SECRET)

        assert response.status_code == 200 and WRONG_PASSWORD in response.content.decode()

    def test_leaves_the_staff_lockout_alone(self, client, with_password):
        for _ in range(6):
            password_login(client, "not-it-at-all")

        assert not AccessAttempt.objects.exists()
