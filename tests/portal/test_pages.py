"""Every portal page renders in both languages: the sign-in pages for anyone, the others for a member."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
LANGUAGES = ["zh-hans", "en"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["portal:login", "portal:login-password"])
def test_sign_in_pages_render_for_anyone(client, name, language):
    client.cookies["django_language"] = language

    response = client.get(reverse(name))

    body = response.content.decode()
    assert response.status_code == 200 and f'<html lang="{language}">' in body and 'class="tabbar"' in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "name", ["portal:home", "portal:code", "portal:me", "portal:profile", "portal:phone-verify", "portal:plan"]
)
def test_member_pages_render_for_a_signed_in_member(member_client, name, language):
    member_client.cookies["django_language"] = language

    response = member_client.get(reverse(name))

    body = response.content.decode()
    assert response.status_code == 200 and f'<html lang="{language}">' in body and 'class="tabbar"' in body


def test_the_sign_in_page_reads_in_chinese(client):
    client.cookies["django_language"] = "zh-hans"

    body = client.get(reverse("portal:login")).content.decode()

    assert "获取验证码" in body and "手机号" in body and "Text me a code" not in body


def test_the_me_page_offers_a_password_and_sign_out(member_client, member):
    body = member_client.get(reverse("portal:me")).content.decode()

    assert member.member_no in body and "138****8000" in body
    assert f'action="{reverse("portal:password")}"' in body and f'action="{reverse("portal:logout")}"' in body


def test_no_page_loads_anything_from_another_site(client, member_client):
    bodies = [client.get(reverse(n)).content.decode() for n in ("portal:login", "portal:login-password")]
    bodies += [member_client.get(reverse(n)).content.decode() for n in ("portal:home", "portal:code", "portal:me")]

    for body in bodies:
        assert "http://" not in body and "https://" not in body and 'src="//' not in body
