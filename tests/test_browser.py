"""One real browser pass over the office shell: Debian's Chromium, never a downloaded browser."""

import shutil

import pytest
from django.urls import reverse

from tests.conftest import CHROMIUM, PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]


@pytest.mark.django_db(transaction=True)
def test_a_manager_signs_in_opens_the_dashboard_switches_language_and_signs_out(live_server, page, manager, store):
    page.goto(live_server.url + reverse("members:login"))
    page.fill("input[name=username]", manager.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")

    page.wait_for_url(live_server.url + "/")
    assert page.locator("h2.page-title").inner_text().strip() in {"仪表盘", "Dashboard"}
    assert page.locator("[data-kpi=stores] .kpi-value").inner_text() == "1"

    page.click("button[name=language][value=en]")
    page.wait_for_load_state()
    assert page.locator("h2.page-title").inner_text().strip() == "Dashboard"
    page.click("button[name=language][value=zh-hans]")
    page.wait_for_load_state()
    assert page.locator("h2.page-title").inner_text().strip() == "仪表盘"

    page.locator("[data-bs-toggle=dropdown]").last.click()
    page.click("#logout-button")
    page.wait_for_url("**/login/")
    assert page.locator("#login-submit").is_visible()
    page.goto(live_server.url + "/")
    assert "/login/" in page.url
