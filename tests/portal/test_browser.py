"""The sign-in flow in Debian's Chromium at 375 px with JavaScript off: no sideways scrolling, large tap targets."""

import shutil

import pytest
from django.urls import reverse

from members import sms
from tests.conftest import CHROMIUM
from tests.portal.conftest import OTHER_PHONE, last_code

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]
SMALL_TARGETS = """() => [...document.querySelectorAll(
    'main a, main button, main input:not([type=hidden]):not([type=checkbox]), main label.check')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
  .map(e => e.outerHTML.slice(0, 80))"""
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def check_layout(page) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate(OVERFLOW) <= 0, page.url
    assert page.evaluate(SMALL_TARGETS) == [], page.url


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_new_member_joins_on_a_phone_without_javascript(live_server, browser, language):
    context = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page = context.new_page()

    page.goto(live_server.url + reverse("portal:login"))
    check_layout(page)
    page.fill("input[name=phone]", "139 0013 9000")
    page.click(f"form[action='{reverse('portal:login')}'] button[type=submit]")

    page.wait_for_url("**" + reverse("portal:login-code"))
    check_layout(page)
    assert page.get_attribute("input[name=code]", "autocomplete") == "one-time-code"
    page.fill("input[name=code]", last_code(OTHER_PHONE))
    page.click(f"form[action='{reverse('portal:login-code')}'] button[type=submit]")

    page.wait_for_url("**" + reverse("portal:login-register"))
    check_layout(page)
    page.click(f"form[action='{reverse('portal:login-register')}'] button[type=submit]")

    page.wait_for_url(live_server.url + reverse("portal:home"))
    page.goto(live_server.url + reverse("portal:me"))
    check_layout(page)
    assert [m.phone for m in sms.outbox] == [OTHER_PHONE]
    context.close()
