"""A whole purchase at the counter with the keyboard only, in a real browser: find the member by the last four
digits of their phone, F1, the amount, a coupon, points, the balance by the member's payment code, Enter,
Enter again (charged once), the receipt; then a top-up with a package and a partial refund."""

import shutil
from uuid import uuid4

import pytest
from django.urls import reverse

from assets import services
from assets.models import Account, Asset, Coupon, CouponTemplate, Purchase, PurchaseRefund, RechargePackage
from members.models import Member, Staff, Store
from members.services import payment_code_issue
from tests.conftest import CHROMIUM, PASSWORD
from tests.factories import MemberFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]


def key() -> str:
    return uuid4().hex


@pytest.fixture
def member(store: Store) -> Member:
    member = MemberFactory.create(phone="+8613800135678", name="韩梅梅", registered_store=store)
    services.balance_top_up(member=member, amount_fen=50_000, idempotency_key=key(), store=store)
    services.points_earn(member=member, points=2_000, idempotency_key=key())
    return member


@pytest.fixture
def coupon(member: Member) -> Coupon:
    template = CouponTemplate.objects.create(
        name="20 off 100", kind=CouponTemplate.Kind.CASH_OFF, value_fen=2_000, threshold_fen=10_000,
        validity=CouponTemplate.Validity.RELATIVE, valid_days=30,
    )  # fmt: skip
    return services.coupon_issue(template=template, member=member, idempotency_key=key())


def focused(page, selector: str) -> None:
    """Wait until the screen has put the keyboard's focus on `selector` (after each htmx step settles)."""
    page.wait_for_function(f"document.activeElement && document.activeElement.matches({selector!r})")


def balance(member: Member) -> int:
    return sum(
        Account.objects.filter(member=member, asset__in=(Asset.PRINCIPAL, Asset.BONUS)).values_list(
            "balance", flat=True
        )
    )


@pytest.mark.django_db(transaction=True)
def test_a_purchase_top_up_and_refund_with_the_keyboard_only(
    live_server, page, cashier: Staff, member: Member, coupon: Coupon
) -> None:
    package = RechargePackage.objects.create(name="200 get 20", pay_fen=20_000, bonus_fen=2_000)
    page.goto(live_server.url + reverse("members:login"))
    page.fill("input[name=username]", cashier.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + reverse("assets:counter"))
    focused(page, "#counter-q")

    # find the member by the last four digits; the find field has the focus
    page.keyboard.type("5678")
    page.keyboard.press("Enter")
    focused(page, "#counter-f1")
    # F1: the purchase form, the amount field first
    page.keyboard.press("F1")
    focused(page, "#id_amount")
    page.keyboard.type("150.00")
    page.keyboard.press("Tab")
    page.keyboard.type(coupon.code)
    page.keyboard.press("Tab")
    page.keyboard.type("500")  # points: 5.00 off
    page.locator("#id_balance").focus()  # the payment fields are reached with Tab too; straight to the balance
    page.keyboard.type("125.00")
    page.locator("#id_payment_code").focus()
    page.keyboard.type(payment_code_issue(member=Member.objects.get(pk=member.pk)).code)
    page.keyboard.press("Enter")  # preview
    focused(page, "#counter-confirm-button")
    assert "125.00" in page.locator("#counter-confirm-button").inner_text()
    page.keyboard.press("Enter")  # confirm
    page.keyboard.press("Enter")  # a second Enter on the same key: nothing more is charged
    page.locator("#counter-done").wait_for()
    page.wait_for_timeout(300)

    purchase = Purchase.objects.get()
    assert (purchase.gross_fen, purchase.coupon_fen, purchase.points_offset_fen, purchase.balance_fen) == (
        15_000,
        2_000,
        500,
        12_500,
    )
    assert balance(member) == 50_000 - 12_500

    # the receipt, printable
    receipt = page.context.new_page()
    receipt.goto(live_server.url + reverse("assets:counter-receipt", args=[purchase.order_no]) + "?w=58")
    assert purchase.order_no in receipt.content() and receipt.locator("body.receipt-58").count() == 1
    receipt.close()

    # Esc, then the same member again by the last four digits, F2: a top-up with the package
    page.keyboard.press("Escape")
    page.locator("#counter-welcome").wait_for()
    focused(page, "#counter-q")
    page.keyboard.type("5678")
    page.keyboard.press("Enter")
    focused(page, "#counter-f1")
    page.keyboard.press("F2")
    focused(page, "#id_package")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # preview
    focused(page, "#counter-top-up-confirm")
    page.keyboard.press("Enter")  # confirm
    page.locator("#counter-member .alert-success").wait_for()
    assert balance(member) == 50_000 - 12_500 + 22_000

    # a partial refund of the purchase from today's list (under the manager's limit)
    page.keyboard.press("Escape")
    page.locator(f'[data-refund="{purchase.order_no}"]').click()
    focused(page, "#id_amount")
    page.keyboard.type("25.00")
    page.keyboard.press("Enter")
    focused(page, "#counter-refund-confirm")
    page.keyboard.press("Enter")
    page.locator("[data-panel=refund-done]").wait_for()

    refund = PurchaseRefund.objects.get()
    assert refund.amount_fen == 2_500 and refund.balance_fen == 2_500
    assert package.pk and balance(member) == 50_000 - 12_500 + 22_000 + 2_500
