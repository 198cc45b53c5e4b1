"""Every page renders, in both languages, for the roles that may see it; no sidebar link errors."""

import re

import pytest
from django.urls import reverse

from config.navigation import SECTIONS
from members.roles import Role
from tests.conftest import client_for, make_staff

OFFICE_PAGES = [
    "reports:dashboard",
    "members:index",
    "members:settings",
    "members:store-list",
    "members:store-create",
    "members:staff-list",
    "members:staff-create",
    "reports:jobs",
    "reports:index",
    "tiers:index",
    "assets:balance",
    "assets:points",
    "assets:coupons",
    "assets:counter",
    "promotions:index",
    "tags:index",
]
PORTAL_PAGES = ["portal:login", "portal:login-password"]  # open to anyone; the signed-in pages: tests/portal


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("name", OFFICE_PAGES)
def test_office_page_renders_for_an_owner(owner_client, store, name, language):
    owner_client.cookies["django_language"] = language

    response = owner_client.get(reverse(name))

    assert response.status_code == 200
    assert f'<html lang="{language}">' in response.content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("name", PORTAL_PAGES)
def test_portal_sign_in_pages_render_without_any_login(client, name, language):
    client.cookies["django_language"] = language

    response = client.get(reverse(name))

    assert response.status_code == 200
    body = response.content.decode()
    assert f'<html lang="{language}">' in body and 'class="tabbar"' in body


@pytest.mark.parametrize("name", ["portal:home", "portal:code", "portal:me"])
def test_portal_member_pages_send_a_visitor_to_sign_in(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_login_page_renders(client, language):
    client.cookies["django_language"] = language

    response = client.get(reverse("members:login"))

    assert response.status_code == 200


def test_pages_are_translated_into_chinese(owner_client, store):
    owner_client.cookies["django_language"] = "zh-hans"

    body = owner_client.get(reverse("reports:dashboard")).content.decode()

    assert "会员" in body and "仪表盘" in body and "Dashboard" not in body


@pytest.mark.parametrize("role", Role.values)
def test_every_sidebar_link_opens_for_the_role_that_sees_it(db, store, role):
    client = client_for(make_staff(role, store=store))

    body = client.get(reverse("reports:dashboard")).content.decode()

    for section in SECTIONS:
        url = reverse(section.url_name)
        assert (f'href="{url}"' in body) == (role in section.roles)
        if role in section.roles:
            assert client.get(url).status_code == 200, section.key


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("reports:dashboard"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("members:login"))


def _po_string(match) -> str:
    """The text of a (possibly multi-line) quoted .po string, escapes resolved."""
    raw = "".join(re.findall(r'"(.*)"', match.group(1)))
    return raw.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"').replace("\\\\", "\\")


def _po_entries(path):
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        msgstr = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.M)
        context = re.search(r'^msgctxt ((?:".*"\n?)+)', block, re.M)
        if msgid and msgstr:
            yield _po_string(msgid), _po_string(msgstr), "#, fuzzy" in block, context and _po_string(context)


def test_chinese_catalogue_is_complete_and_compiled():
    import gettext
    from pathlib import Path

    from django.conf import settings

    folder = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
    compiled = gettext.GNUTranslations((folder / "django.mo").open("rb"))

    entries = [entry for entry in _po_entries(folder / "django.po") if entry[0]]

    def translated(msgid: str, context: str | None) -> str:
        return compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)

    assert entries, "the catalogue is empty"
    assert [i for i, s, fuzzy, _ in entries if not s or fuzzy] == [], "untranslated or fuzzy entries"
    assert [i for i, s, _, ctx in entries if translated(i, ctx) != s] == [], "django.mo is stale: make messages"


def test_an_unknown_page_gets_our_404_page(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_a_forbidden_page_gets_our_403_page(cashier_client):
    response = cashier_client.get(reverse("members:staff-list"))

    assert response.status_code == 403
    assert "Your role does not give access" in response.content.decode()
