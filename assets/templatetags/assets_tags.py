"""Money and points as staff read them: {{ fen|yuan }} → 1,234.50, {{ fen|signed_yuan }} → +1,234.50."""

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from assets.models import CouponTemplate, Tender

register = template.Library()


def _grouped(fen: int) -> str:
    yuan, cents = divmod(abs(fen), 100)
    return f"{yuan:,}.{cents:02d}"


@register.filter
def yuan(fen: int | None) -> str:
    if fen is None or fen == "":
        return "—"
    fen = int(fen)
    return f"-{_grouped(fen)}" if fen < 0 else _grouped(fen)


@register.filter
def signed_yuan(fen: int | None) -> str:
    if not fen:
        return ""
    fen = int(fen)
    return f"{'+' if fen > 0 else '-'}{_grouped(fen)}"


@register.filter
def signed(number: int | None) -> str:
    if not number:
        return ""
    number = int(number)
    return f"{number:+,}"


@register.filter
def percent_of(part: int | None, whole: int | None) -> str:
    """part / whole as a percentage with one decimal; a dash when there is no whole."""
    if not whole:
        return "—"
    tenths = (1000 * int(part or 0) + int(whole) // 2) // int(whole)  # rounded half up, in integers
    return f"{tenths // 10}.{tenths % 10}%"


@register.filter
def sign_class(number: int | None) -> str:
    if not number:
        return "text-secondary"
    return "text-green" if int(number) > 0 else "text-red"


@register.filter
def coupon_terms(coupon: CouponTemplate) -> str:
    """What a coupon of this template is worth, in a few words."""
    if coupon.kind == CouponTemplate.Kind.CASH_OFF:
        if coupon.threshold_fen:
            return _("¥%(value)s off orders from ¥%(threshold)s") % {
                "value": yuan(coupon.value_fen),
                "threshold": yuan(coupon.threshold_fen),
            }
        return _("¥%(value)s off") % {"value": yuan(coupon.value_fen)}
    if coupon.kind == CouponTemplate.Kind.PERCENT:
        text = _("Pay %(percent)s%% of the price") % {"percent": coupon.percent_of_price}
        if coupon.cap_fen:
            text += _(", saving at most ¥%(cap)s") % {"cap": yuan(coupon.cap_fen)}
        if coupon.threshold_fen:
            text += _(", on orders from ¥%(threshold)s") % {"threshold": yuan(coupon.threshold_fen)}
        return text
    return _("Gift: %(gift)s") % {"gift": coupon.gift_name}


@register.filter
def coupon_validity(coupon: CouponTemplate) -> str:
    if coupon.validity == CouponTemplate.Validity.RELATIVE:
        return ngettext("%(n)s day after issue", "%(n)s days after issue", coupon.valid_days or 0) % {
            "n": coupon.valid_days
        }
    until = coupon.valid_until.isoformat() if coupon.valid_until else "—"
    if coupon.valid_from:
        return f"{coupon.valid_from.isoformat()} ~ {until}"
    return _("until %(day)s") % {"day": until}


@register.filter
def tender_label(tender: str) -> str:
    """How a payment method reads: 'wechat' → WeChat Pay."""
    return str(Tender(tender).label) if tender in Tender.values else tender


@register.filter
def cny(fen: int | None) -> str:
    """An amount as a price reads: ¥1,234.50, -¥3.00."""
    if fen is None or fen == "":
        return "—"
    fen = int(fen)
    return f"-¥{_grouped(fen)}" if fen < 0 else f"¥{_grouped(fen)}"
