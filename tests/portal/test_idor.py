"""Members see only their own: every portal URL that takes an id answers 404 for another member's object, and no
page puts personal data or a code in a URL or the request log."""

import logging
import re
from collections.abc import Callable

import pytest
from django.urls import URLPattern, reverse

from members.models import Member, PaymentCode
from members.urls import portal_urlpatterns
from tests.factories import MemberFactory
from tests.portal.conftest import History, portal_client, shop

pytestmark = pytest.mark.django_db

ID_ROUTES = sorted(p.name for p in portal_urlpatterns if isinstance(p, URLPattern) and p.pattern.converters and p.name)
# how to find a member's own object for each of them: a new route with an id must be added here
OBJECT_OF: dict[str, Callable[[History], int]] = {
    "coupon": lambda history: history.coupon.pk,
    "purchase": lambda history: history.purchase.pk,
}
USED_COUPON_OF: dict[str, Callable[[History], int]] = {"coupon": lambda history: history.used_coupon.pk}


@pytest.fixture
def stranger(store) -> History:
    return shop(MemberFactory.create(), store)


def test_every_route_with_an_id_is_covered():
    assert sorted(OBJECT_OF) == ID_ROUTES, "a portal route with an id needs its case here"


@pytest.mark.parametrize("name", ID_ROUTES)
def test_another_member_s_object_is_not_found(member_client, history, stranger, name):
    response = member_client.get(reverse(f"portal:{name}", args=[OBJECT_OF[name](stranger)]))

    assert response.status_code == 404


@pytest.mark.parametrize("name", sorted(USED_COUPON_OF))
def test_another_member_s_used_object_is_not_found_either(member_client, history, stranger, name):
    response = member_client.get(reverse(f"portal:{name}", args=[USED_COUPON_OF[name](stranger)]))

    assert response.status_code == 404


@pytest.mark.parametrize("name", ID_ROUTES)
def test_the_member_s_own_object_is_shown(member_client, history, stranger, name):
    response = member_client.get(reverse(f"portal:{name}", args=[OBJECT_OF[name](history)]))

    assert response.status_code == 200


@pytest.mark.parametrize("name", ID_ROUTES)
def test_an_id_nobody_has_is_not_found(member_client, history, name):
    assert member_client.get(reverse(f"portal:{name}", args=[999_999_999])).status_code == 404


@pytest.mark.parametrize("name", ID_ROUTES)
def test_a_visitor_is_sent_to_sign_in_without_learning_whether_the_id_exists(client, stranger, name):
    response = client.get(reverse(f"portal:{name}", args=[OBJECT_OF[name](stranger)]))

    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


def test_another_member_s_history_never_shows(member_client, history, stranger):
    stranger_member = stranger.purchase.member
    assert stranger_member is not None
    pages = ["portal:home", "portal:balance", "portal:points", "portal:points-expiry", "portal:coupons"]
    bodies = [member_client.get(reverse(name)).content.decode() for name in [*pages, "portal:purchases"]]
    bodies += [
        member_client.get(reverse("portal:coupons") + f"?tab={tab}").content.decode() for tab in ("used", "expired")
    ]

    for body in bodies:
        assert stranger.coupon.code not in body and stranger_member.member_no not in body
        assert f"/m/purchases/{stranger.purchase.pk}/" not in body and f"/m/coupons/{stranger.coupon.pk}/" not in body


# ------------------------------------------------------------------ no personal data in URLs or logs

SAFE_URL = re.compile(
    r"(/m/[a-z0-9/-]*|/static/[\w./-]+|/i18n/setlang/|#i-[a-z_]+)(\?(tab=[a-z]+|after=\d+-\d+)(&amp;after=\d+-\d+)?)?"
)


def portal_pages(history: History) -> list[str]:
    names = ["home", "code", "balance", "points", "points-expiry", "coupons", "purchases", "me"]
    urls = [reverse(f"portal:{name}") for name in names]
    urls += [reverse("portal:coupons") + "?tab=used", reverse("portal:coupons") + "?tab=expired"]
    urls += [
        reverse("portal:coupon", args=[history.coupon.pk]),
        reverse("portal:coupon", args=[history.used_coupon.pk]),
    ]
    return [*urls, reverse("portal:purchase", args=[history.purchase.pk])]


def secrets_of(member: Member, history: History) -> list[str]:
    assert member.phone is not None
    codes = list(PaymentCode.objects.filter(member=member).values_list("code", flat=True))
    return [
        member.member_no,
        str(member.phone.national_number),
        member.phone.as_e164,
        member.name,
        history.coupon.code,
        history.used_coupon.code,
        *codes,
    ]


def test_links_carry_ids_and_cursors_only(member_client, member, history):
    links = []
    for url in portal_pages(history):
        body = member_client.get(url).content.decode()
        links += re.findall(r'(?:href|src|hx-get|action)="([^"]*)"', body)

    unsafe = [link for link in links if not SAFE_URL.fullmatch(link)]
    assert links and unsafe == []
    for secret in secrets_of(member, history):
        assert not any(secret in link for link in links)


def test_the_request_log_holds_no_personal_data_or_codes(member, history, caplog):
    client = portal_client(member)

    with caplog.at_level(logging.DEBUG):
        for url in portal_pages(history):
            client.get(url)
        client.get(reverse("portal:code"), HTTP_HX_REQUEST="true")

    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "/m/coupons/" in logged  # the log did record the pages
    for secret in secrets_of(member, history):
        assert secret not in logged
