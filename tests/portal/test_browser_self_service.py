"""A member on a phone (Debian's Chromium at 375 x 812) signs in, signs in daily from two tabs and earns once, then
exchanges points for a coupon and finds it in the coupon wallet."""

import shutil

import pytest
from django.urls import reverse

from assets import self_service
from assets import services as assets_services
from assets.models import CouponTemplate, Exchange, ExchangeItem, SignIn
from tests.conftest import CHROMIUM
from tests.factories import MemberFactory
from tests.portal.conftest import PHONE, TYPED, new_key
from tests.portal.test_browser_home import check_layout, texted_code
from tests.portal.test_self_service_pages import points

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_member_signs_in_daily_once_and_exchanges_points(live_server, browser, settings, capsys, language):
    settings.HUIYUAN_SMS_BACKEND = "members.sms.ConsoleSmsBackend"
    member = MemberFactory.create(phone=PHONE, name="王小明")
    rules = self_service.sign_in_settings()
    rules.is_enabled, rules.points, rules.growth, rules.streak_bonuses = True, 10, 0, [{"day": 7, "points": 50}]
    self_service.sign_in_settings_save(settings_obj=rules)
    assets_services.points_earn(member=member, points=200, idempotency_key=new_key())
    template = CouponTemplate.objects.create(
        name="¥10 off ¥50",
        kind=CouponTemplate.Kind.CASH_OFF,
        value_fen=1_000,
        threshold_fen=5_000,
        validity=CouponTemplate.Validity.RELATIVE,
        valid_days=30,
    )
    item = ExchangeItem.objects.create(name="Coffee treat", points_price=150, coupon_template=template, stock=20)

    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page = context.new_page()
    page.goto(live_server.url + reverse("portal:login"))
    page.fill("input[name=phone]", TYPED)
    page.click(f"form[action='{reverse('portal:login')}'] button[type=submit]")
    page.wait_for_url("**" + reverse("portal:login-code"))
    page.fill("input[name=code]", texted_code(capsys.readouterr().out))
    page.click(f"form[action='{reverse('portal:login-code')}'] button[type=submit]")
    page.wait_for_url(live_server.url + reverse("portal:home"))

    # two tabs on the sign-in page, both tapped: one reward, and each tab shows today's sign-in
    page.click("a[data-link=sign-in]")
    page.wait_for_url(live_server.url + reverse("portal:sign-in"))
    check_layout(page)
    other = context.new_page()
    other.goto(live_server.url + reverse("portal:sign-in"))
    page.click(".sign-in-button")
    other.click(".sign-in-button")
    for tab in (page, other):
        tab.wait_for_selector("#sign-in-panel.done .notice-success")
        assert "+10" in tab.inner_text("#sign-in-panel .notice-success")
    check_layout(page)
    assert SignIn.objects.filter(member=member).count() == 1 and points(member) == 210

    # exchange: the catalogue, the confirm step, the result, the coupon in the wallet
    page.goto(live_server.url + reverse("portal:exchange"))
    check_layout(page)
    page.click(f"[data-item='{item.pk}'] a.button")
    page.wait_for_url(live_server.url + reverse("portal:exchange-confirm") + f"?item={item.pk}")
    check_layout(page)
    page.click(".confirm-form button[type=submit]")
    page.wait_for_selector(".notice-success")
    done = Exchange.objects.get(member=member)
    assert page.url == live_server.url + reverse("portal:coupon", args=[done.coupon_id])
    check_layout(page)
    assert points(member) == 60
    page.goto(live_server.url + reverse("portal:coupons"))
    assert page.locator(f"a.coupon[href='{reverse('portal:coupon', args=[done.coupon_id])}']").is_visible()
    context.close()
