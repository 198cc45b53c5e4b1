"""A member on a phone (Debian's Chromium at 375 x 812): signs in with the code the console backend prints, sees the
balance and points, opens the payment code and watches it refresh by itself. Nothing is fetched from another site."""

import re
import shutil
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from assets import services as assets_services
from members.services import payment_code_issue
from tests.conftest import CHROMIUM
from tests.portal.conftest import TYPED, History, new_key, portal_client

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]
SMALL_TARGETS = """() => [...document.querySelectorAll('main a, main button, main input:not([type=hidden])')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
  .map(e => e.outerHTML.slice(0, 80))"""
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
DIGITS = """() => [...document.querySelectorAll('#payment-code .code-digits span:not(.visually-hidden)')]
  .map(s => s.textContent).join('')"""


def check_layout(page) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate(OVERFLOW) <= 0, page.url
    assert page.evaluate(SMALL_TARGETS) == [], page.url


def texted_code(output: str) -> str:
    """The newest sign-in code the console backend printed (the number masked, the code in full)."""
    codes = re.findall(r"SMS to \+86 138\*{4}8000: .*?\b(\d{6})\b", output)
    assert codes, output
    return codes[-1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_member_signs_in_sees_the_assets_and_the_payment_code_refreshes(
    live_server, browser, settings, capsys, history: History, language
):
    settings.HUIYUAN_SMS_BACKEND = "members.sms.ConsoleSmsBackend"
    member = history.purchase.member
    assert member is not None
    for _ in range(22):  # more than a page of balance movements
        assets_services.balance_top_up(member=member, amount_fen=100, idempotency_key=new_key())
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page = context.new_page()
    elsewhere: list[str] = []
    page.on(
        "request", lambda request: None if request.url.startswith(live_server.url) else elsewhere.append(request.url)
    )

    page.goto(live_server.url + reverse("portal:home"))
    page.wait_for_url("**" + reverse("portal:login") + "*")
    page.fill("input[name=phone]", TYPED)
    page.click(f"form[action='{reverse('portal:login')}'] button[type=submit]")
    page.wait_for_url("**" + reverse("portal:login-code"))
    page.fill("input[name=code]", texted_code(capsys.readouterr().out))
    page.click(f"form[action='{reverse('portal:login-code')}'] button[type=submit]")

    page.wait_for_url(live_server.url + reverse("portal:home"))
    check_layout(page)
    assert page.inner_text("[data-tile=balance] .tile-value") == "¥278.00"
    assert page.inner_text("[data-tile=points] .tile-value") == "74"
    assert page.locator(".member-card .barcode svg").is_visible() and page.locator(".card-qr svg").is_visible()

    # the member's code is 57 s old when the page opens: it shows 3 s to go, then htmx swaps in a fresh one
    stale = payment_code_issue(member=member, now=timezone.now() - timedelta(seconds=57))
    page.click("a.pay-button")
    page.wait_for_url(live_server.url + reverse("portal:code"))
    check_layout(page)
    assert page.evaluate(DIGITS) == stale.code
    assert int(page.inner_text("[data-countdown]")) <= 3
    page.wait_for_function(f"() => ({DIGITS})() !== '{stale.code}'", timeout=15_000)
    fresh = page.evaluate(DIGITS)
    assert re.fullmatch(r"28\d{16}", fresh) and fresh != stale.code
    assert 55 <= int(page.inner_text("[data-countdown]")) <= 60
    assert page.url == live_server.url + reverse("portal:code")  # the code never went into the address
    assert page.locator(".pay-qr svg").bounding_box()["width"] >= 190  # type: ignore[index]

    # "load more" adds the older movements below the first twenty, going on with the same month
    page.goto(live_server.url + reverse("portal:balance"))
    assert page.locator("ol.rows > li").count() == 20
    page.click("a.more")
    page.wait_for_function("() => document.querySelectorAll('ol.rows > li').length === 26")
    assert page.locator("h2.month-title").count() == 1 and page.locator("a.more").count() == 0
    assert page.url == live_server.url + reverse("portal:balance")
    check_layout(page)

    assert elsewhere == []
    context.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_reads_on_a_phone_without_javascript(live_server, browser, history: History, language):
    member = history.purchase.member
    assert member is not None
    for _ in range(22):  # more than a page of balance movements
        assets_services.balance_top_up(member=member, amount_fen=100, idempotency_key=new_key())
    context = browser.new_context(viewport={"width": 375, "height": 812}, java_script_enabled=False)
    cookie = portal_client(member).cookies[django_settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME].value
    context.add_cookies(
        [
            {"name": "django_language", "value": language, "url": live_server.url},
            {
                "name": django_settings.HUIYUAN_PORTAL_SESSION_COOKIE_NAME,
                "value": cookie,
                "url": live_server.url + "/m/",
            },
        ]
    )
    page = context.new_page()
    pages = ["home", "code", "balance", "points", "points-expiry", "coupons", "purchases", "me"]
    urls = [reverse(f"portal:{name}") for name in pages]
    urls += [
        reverse("portal:coupon", args=[history.coupon.pk]),
        reverse("portal:coupon", args=[history.used_coupon.pk]),
    ]
    urls += [reverse("portal:purchase", args=[history.purchase.pk]), reverse("portal:coupons") + "?tab=used"]

    for url in urls:
        page.goto(live_server.url + url)
        check_layout(page)

    page.goto(live_server.url + reverse("portal:balance"))
    assert page.locator("ol.rows > li").count() == 20
    page.click("a.more")
    page.wait_for_url("**/m/balance/?after=*")
    assert page.locator("ol.rows > li").count() == 6 and page.locator("h2.month-title").count() >= 1
    check_layout(page)
    context.close()
