"""Back-office forms of the ledgers. Amounts arrive as text and leave as integers: yuan → fen, points as whole
numbers, both read with ASCII patterns (Django's number fields would accept full-width digits, '1e3' or '1_000')."""

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import uuid4

from django import forms
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from assets import selectors
from assets.models import (
    Asset,
    CouponTemplate,
    ExchangeItem,
    LoyaltySettings,
    RechargePackage,
    SignInSettings,
)
from members.forms import OfficeFormMixin, yuan_text, yuan_to_fen
from members.models import Store

ADD, DEDUCT = "add", "deduct"
DIRECTIONS = [(ADD, _("Add")), (DEDUCT, _("Deduct"))]
_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)
_KEY = r"^[A-Za-z0-9_-]{16,64}\Z"


def new_key() -> str:
    return uuid4().hex


def with_new_key(data: QueryDict) -> QueryDict:
    """The posted data under a fresh idempotency key, for the next attempt after a refusal: the ledger
    remembers a refused key, so the same key with other values would be a conflict."""
    fresh = data.copy()
    fresh["idempotency_key"] = new_key()
    fresh.pop("confirmed", None)
    return fresh


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class YuanField(forms.CharField):
    """Yuan text such as 12.50 → 1250 fen; never a float, never a sign."""

    default_error_messages = {
        "invalid": _("Enter an amount in yuan like 12.50: digits, at most two decimals, no sign."),
        "zero": _("Enter an amount above zero."),
    }

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        super().__init__(**kwargs)
        self.widget.attrs["maxlength"] = "13"

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        if isinstance(value, int):  # a disabled field cleans its initial value, already in fen
            return value
        text = super().to_python(value)
        if text is None or text in self.empty_values:
            return None
        try:
            fen = yuan_to_fen(text)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if fen == 0 and not self.allow_zero:
            raise forms.ValidationError(self.error_messages["zero"], code="zero")
        return fen

    def prepare_value(self, value: Any) -> Any:
        return yuan_text(value) if isinstance(value, int) else value


class WholeNumberField(forms.CharField):
    """A whole number typed in ASCII digits, within [min_value, max_value]."""

    default_error_messages = {
        "invalid": _("Enter a whole number in digits, like 100."),
        "range": _("Enter a number from %(min)s to %(max)s."),
    }

    def __init__(self, *, min_value: int = 0, max_value: int = 999_999_999, **kwargs: Any) -> None:
        self.min_value, self.max_value = min_value, max_value
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
        super().__init__(**kwargs)
        self.widget.attrs["maxlength"] = "9"

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if text is None or text in self.empty_values:
            return None
        if not _WHOLE.fullmatch(text):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        number = int(text)
        if not self.min_value <= number <= self.max_value:
            params = {"min": f"{self.min_value:,}", "max": f"{self.max_value:,}"}
            raise forms.ValidationError(self.error_messages["range"], code="range", params=params)
        return number


class IdempotentForm(OfficeFormMixin, forms.Form):
    """A write form: the key is minted when the form is first shown and survives re-renders, so a double
    submit is a retry of the same request."""

    idempotency_key = forms.RegexField(regex=_KEY, widget=forms.HiddenInput, initial=new_key)


class ConfirmedForm(IdempotentForm):
    """A write that staff review on a confirmation step before it is made."""

    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def is_confirmed(self, data: QueryDict) -> bool:
        return bool(self.cleaned_data.get("confirmed")) and "edit" not in data


# ------------------------------------------------------------------ member adjustments


class BalanceAdjustForm(ConfirmedForm):
    asset = forms.ChoiceField(
        label=_("Balance"), choices=[(Asset.PRINCIPAL, _("Principal")), (Asset.BONUS, _("Bonus"))]
    )
    direction = forms.ChoiceField(label=_("Add or deduct"), choices=DIRECTIONS)
    amount = YuanField(label=_("Amount (yuan)"), help_text=_("For example 12.50"))
    reason = forms.CharField(label=_("Reason"), max_length=200)

    @property
    def signed_amount_fen(self) -> int:
        amount = int(self.cleaned_data["amount"])
        return amount if self.cleaned_data["direction"] == ADD else -amount


class PointsAdjustForm(ConfirmedForm):
    direction = forms.ChoiceField(label=_("Add or deduct"), choices=DIRECTIONS)
    points = WholeNumberField(label=_("Points"), min_value=1, max_value=100_000_000)
    reason = forms.CharField(label=_("Reason"), max_length=200)

    @property
    def signed_points(self) -> int:
        points = int(self.cleaned_data["points"])
        return points if self.cleaned_data["direction"] == ADD else -points


class CouponIssueForm(IdempotentForm):
    template = forms.ModelChoiceField(label=_("Coupon"), queryset=CouponTemplate.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = selectors.coupon_templates_issuable()


class CouponVoidForm(IdempotentForm):
    reason = forms.CharField(label=_("Reason"), max_length=200)


# ------------------------------------------------------------------ coupon templates


class CouponTemplateForm(OfficeFormMixin, forms.Form):
    """Every field of a template, with the database's check constraints repeated as form errors.
    Once coupons were issued, what a coupon is worth is fixed: issued coupons read it from the template."""

    name = forms.CharField(label=pgettext_lazy("a coupon or package", "Name"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=CouponTemplate.Kind.choices)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    value = YuanField(label=_("Value (yuan)"), required=False, allow_zero=True, help_text=_("Taken off the order."))
    threshold = YuanField(
        label=_("Minimum order (yuan)"), required=False, allow_zero=True, help_text=_("Empty or 0: no minimum.")
    )
    percent_of_price = WholeNumberField(
        # xgettext:no-python-format
        label=_("Pay (% of price)"),
        required=False,
        min_value=1,
        max_value=99,
        # xgettext:no-python-format
        help_text=_("85 means 15% off (八五折)."),
    )
    cap = YuanField(
        label=_("Maximum discount (yuan)"), required=False, allow_zero=True, help_text=_("Empty or 0: no cap.")
    )
    gift_name = forms.CharField(label=_("Gift"), max_length=100, required=False)
    validity = forms.ChoiceField(
        label=_("Validity"), choices=CouponTemplate.Validity.choices, initial=CouponTemplate.Validity.RELATIVE
    )
    valid_from = forms.DateField(
        label=_("Valid from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Empty: from the day it is issued."),
    )
    valid_until = forms.DateField(
        label=_("Valid until (last day)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    valid_days = WholeNumberField(
        label=_("Valid for (days)"),
        required=False,
        min_value=1,
        max_value=3_650,
        initial=30,
        help_text=_("Counting the day of issue."),
    )
    stock = WholeNumberField(label=_("Stock"), required=False, help_text=_("Empty: unlimited."))
    per_member_limit = WholeNumberField(
        label=_("Per member"), required=False, min_value=1, help_text=_("Empty: no limit.")
    )
    stores = forms.ModelMultipleChoiceField(
        label=_("Stores"), queryset=Store.objects.none(), required=False, help_text=_("None: every store.")
    )
    stackable = forms.BooleanField(label=_("Stacks with other coupons"), required=False)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    WORTH = ("kind", "value", "threshold", "percent_of_price", "cap", "gift_name")

    def __init__(self, *args: Any, template: CouponTemplate | None = None, **kwargs: Any) -> None:
        self.template = template
        if template is not None and "initial" not in kwargs:
            kwargs["initial"] = self._initial(template)
        super().__init__(*args, **kwargs)
        stores = self.fields["stores"]
        assert isinstance(stores, forms.ModelMultipleChoiceField)
        chosen = Q(pk__in=template.stores.all()) if template is not None and template.pk else Q(pk__in=[])
        stores.queryset = Store.objects.filter(Q(is_active=True) | chosen).order_by("code", "pk")
        if self.issued:
            for name in self.WORTH:
                self.fields[name].disabled = True

    @property
    def issued(self) -> int:
        return self.template.issued if self.template is not None else 0

    @staticmethod
    def _initial(t: CouponTemplate) -> dict[str, Any]:
        return {
            "name": t.name,
            "kind": t.kind,
            "description": t.description,
            "value": t.value_fen,
            "threshold": t.threshold_fen,
            "percent_of_price": t.percent_of_price,
            "cap": t.cap_fen,
            "gift_name": t.gift_name,
            "validity": t.validity,
            "valid_from": t.valid_from,
            "valid_until": t.valid_until,
            "valid_days": t.valid_days,
            "stock": t.stock,
            "per_member_limit": t.per_member_limit,
            "stores": list(t.stores.all()) if t.pk else [],
            "stackable": t.stackable,
            "is_active": t.is_active,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        value, threshold = data.get("value") or 0, data.get("threshold") or 0
        if kind == CouponTemplate.Kind.CASH_OFF:
            if not value and "value" not in self.errors:
                self.add_error("value", _("A cash-off coupon needs a value above zero."))
            elif threshold and threshold < value:
                self.add_error("threshold", _("The minimum order must be empty or at least the value."))
        if kind == CouponTemplate.Kind.PERCENT and self._missing(data, "percent_of_price"):
            self.add_error("percent_of_price", _("Enter the share of the price the member pays, from 1 to 99."))
        if kind == CouponTemplate.Kind.GIFT and not (data.get("gift_name") or "").strip():
            self.add_error("gift_name", _("Name the gift."))
        if data.get("validity") == CouponTemplate.Validity.FIXED:
            start, end = data.get("valid_from"), data.get("valid_until")
            if self._missing(data, "valid_until"):
                self.add_error("valid_until", _("Fixed dates need a last valid day."))
            elif start and end and start > end:
                self.add_error("valid_until", _("The last valid day is before the first."))
            elif end and not self.issued and end < timezone.localdate():
                self.add_error("valid_until", _("The last valid day has already passed."))
        elif data.get("validity") == CouponTemplate.Validity.RELATIVE and self._missing(data, "valid_days"):
            self.add_error("valid_days", _("Enter for how many days a coupon is valid after it is issued."))
        stock = data.get("stock")
        if stock is not None and stock < self.issued:
            self.add_error(
                "stock", _("%(n)s coupons were issued already; the stock cannot be lower.") % {"n": self.issued}
            )
        return data

    def _missing(self, data: dict[str, Any], name: str) -> bool:
        """Empty, and not already reported as unparsable."""
        return data.get(name) is None and name not in self.errors

    def apply(self, template: CouponTemplate) -> list[Store]:
        """Copy the cleaned values onto `template`, clearing what its kind and validity do not use;
        returns the chosen stores."""
        data = self.cleaned_data
        kind = data["kind"]
        template.name = data["name"]
        template.kind = kind
        template.description = data["description"]
        template.value_fen = (data["value"] or 0) if kind == CouponTemplate.Kind.CASH_OFF else 0
        template.threshold_fen = (data["threshold"] or 0) if kind != CouponTemplate.Kind.GIFT else 0
        template.percent_of_price = data["percent_of_price"] if kind == CouponTemplate.Kind.PERCENT else None
        template.cap_fen = (data["cap"] or 0) if kind == CouponTemplate.Kind.PERCENT else 0
        template.gift_name = data["gift_name"].strip() if kind == CouponTemplate.Kind.GIFT else ""
        template.validity = data["validity"]
        fixed = data["validity"] == CouponTemplate.Validity.FIXED
        template.valid_from = data["valid_from"] if fixed else None
        template.valid_until = data["valid_until"] if fixed else None
        template.valid_days = None if fixed else data["valid_days"]
        template.stock = data["stock"]
        template.per_member_limit = data["per_member_limit"]
        template.stackable = data["stackable"]
        template.is_active = data["is_active"]
        return list(data["stores"])


# ------------------------------------------------------------------ recharge packages


class RechargePackageForm(OfficeFormMixin, forms.Form):
    name = forms.CharField(label=pgettext_lazy("a coupon or package", "Name"), max_length=100)
    pay = YuanField(label=_("Pay (yuan)"), help_text=_("What the member pays, e.g. 500.00"))
    bonus = YuanField(label=_("Bonus (yuan)"), required=False, allow_zero=True, help_text=_("Given on top."))
    points = WholeNumberField(label=_("Points"), required=False)
    growth = WholeNumberField(label=_("Growth value"), required=False)
    coupon_templates = forms.ModelMultipleChoiceField(
        label=_("Coupons"), queryset=CouponTemplate.objects.none(), required=False, help_text=_("One of each.")
    )
    on_sale_from = forms.DateField(
        label=_("On sale from"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    on_sale_until = forms.DateField(
        label=_("On sale until (last day)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)

    def __init__(self, *args: Any, package: RechargePackage | None = None, **kwargs: Any) -> None:
        if package is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": package.name,
                "pay": package.pay_fen,
                "bonus": package.bonus_fen,
                "points": package.points,
                "growth": package.growth,
                "coupon_templates": list(package.coupon_templates.all()),
                "on_sale_from": timezone.localtime(package.starts_at).date() if package.starts_at else None,
                "on_sale_until": selectors.last_valid_date(package.ends_at),
                "is_active": package.is_active,
            }
        super().__init__(*args, **kwargs)
        field = self.fields["coupon_templates"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        linked = Q(pk__in=package.coupon_templates.all()) if package is not None and package.pk else Q(pk__in=[])
        templates: QuerySet[CouponTemplate] = CouponTemplate.objects.filter(Q(is_active=True) | linked)
        field.queryset = templates.order_by("name", "pk")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("on_sale_from"), data.get("on_sale_until")
        if start and end and start > end:
            self.add_error("on_sale_until", _("The last day on sale is before the first."))
        return data

    def apply(self, package: RechargePackage) -> list[CouponTemplate]:
        data = self.cleaned_data
        package.name = data["name"]
        package.pay_fen = data["pay"]
        package.bonus_fen = data["bonus"] or 0
        package.points = data["points"] or 0
        package.growth = data["growth"] or 0
        package.starts_at = local_midnight(data["on_sale_from"]) if data["on_sale_from"] else None
        until = data["on_sale_until"]
        package.ends_at = local_midnight(until + timedelta(days=1)) if until else None  # exclusive, like expiry
        package.is_active = data["is_active"]
        return list(data["coupon_templates"])


# ------------------------------------------------------------------ loyalty settings


class LoyaltySettingsForm(OfficeFormMixin, forms.Form):
    points_expiry = forms.ChoiceField(label=_("Points expire"), choices=LoyaltySettings.Expiry.choices)
    points_expiry_days = WholeNumberField(
        label=_("Days until points expire"),
        required=False,
        min_value=1,
        max_value=3_650,
        help_text=_("Only when points expire a number of days after earning."),
    )
    points_per_yuan = WholeNumberField(
        label=_("Points per yuan paid"), max_value=1_000, help_text=_("0 stops earning on purchases.")
    )
    points_per_yuan_offset = WholeNumberField(
        label=_("Points worth one yuan"), min_value=1, max_value=1_000_000, help_text=_("For paying with points.")
    )
    # xgettext:no-python-format
    points_offset_max_percent = WholeNumberField(label=_("Points pay at most (% of an order)"), max_value=100)
    points_offset_min = WholeNumberField(
        label=_("Fewest points used at once"),
        max_value=1_000_000,
        help_text=_("At the counter, when paying with points."),
    )
    balance_payments_earn = forms.BooleanField(
        label=_("Payments from the stored balance earn points and growth value"), required=False
    )
    refund_approval = YuanField(
        label=_("Refunds above this need a manager (yuan)"),
        allow_zero=True,
        help_text=_("All refunds of one purchase together; 0: every refund."),
    )

    def __init__(self, *args: Any, settings_obj: LoyaltySettings, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "points_expiry": settings_obj.points_expiry,
                "points_expiry_days": settings_obj.points_expiry_days,
                "points_per_yuan": settings_obj.points_per_yuan,
                "points_per_yuan_offset": settings_obj.points_per_yuan_offset,
                "points_offset_max_percent": settings_obj.points_offset_max_percent,
                "points_offset_min": settings_obj.points_offset_min,
                "balance_payments_earn": settings_obj.balance_payments_earn,
                "refund_approval": settings_obj.refund_approval_fen,
            },
        )
        super().__init__(*args, **kwargs)
        self.settings_obj = settings_obj

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        days_missing = data.get("points_expiry_days") is None and "points_expiry_days" not in self.errors
        if data.get("points_expiry") == LoyaltySettings.Expiry.DAYS and days_missing:
            self.add_error("points_expiry_days", _("Enter after how many days points expire."))
        return data

    def apply(self) -> LoyaltySettings:
        obj, data = self.settings_obj, self.cleaned_data
        obj.points_expiry = data["points_expiry"]
        if data["points_expiry_days"] is not None:
            obj.points_expiry_days = data["points_expiry_days"]
        obj.points_per_yuan = data["points_per_yuan"]
        obj.points_per_yuan_offset = data["points_per_yuan_offset"]
        obj.points_offset_max_percent = data["points_offset_max_percent"]
        obj.points_offset_min = data["points_offset_min"]
        obj.balance_payments_earn = data["balance_payments_earn"]
        obj.refund_approval_fen = data["refund_approval"]
        return obj


# ------------------------------------------------------------------ issuing to many members


class CouponBatchForm(IdempotentForm):
    template = forms.ModelChoiceField(label=_("Coupon"), queryset=CouponTemplate.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = selectors.coupon_templates_issuable()


# ------------------------------------------------------------------ the counter


class CounterPurchaseForm(OfficeFormMixin, forms.Form):
    """A sale at the counter: the amount, a coupon and points (members only), and how it is paid. Amounts typed
    for some tenders are taken as they are; the rest of what is to pay goes to `rest_by`."""

    member_no = forms.CharField(required=False, widget=forms.HiddenInput)
    amount = YuanField(label=_("Amount (yuan)"))
    coupon = forms.CharField(label=_("Coupon code"), required=False, max_length=32)
    points = WholeNumberField(label=_("Points to use"), required=False)
    balance = YuanField(label=_("From the stored balance"), required=False, allow_zero=True)
    cash = YuanField(label=pgettext_lazy("tender", "Cash"), required=False, allow_zero=True)
    card = YuanField(label=pgettext_lazy("tender", "Bank card"), required=False, allow_zero=True)
    wechat = YuanField(label=pgettext_lazy("tender", "WeChat Pay"), required=False, allow_zero=True)
    alipay = YuanField(label=pgettext_lazy("tender", "Alipay"), required=False, allow_zero=True)
    rest_by = forms.ChoiceField(
        label=_("The rest by"),
        choices=[
            ("cash", pgettext_lazy("tender", "Cash")),
            ("card", pgettext_lazy("tender", "Bank card")),
            ("wechat", pgettext_lazy("tender", "WeChat Pay")),
            ("alipay", pgettext_lazy("tender", "Alipay")),
            ("balance", _("Stored balance")),
        ],
        initial="cash",
    )
    payment_code = forms.CharField(
        label=_("Payment code"),
        required=False,
        max_length=24,
        help_text=_("Scan the member's code to pay from the balance."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    idempotency_key = forms.RegexField(regex=_KEY, required=False, widget=forms.HiddenInput)

    TENDERS = ("balance", "cash", "card", "wechat", "alipay")

    def tenders(self, payable_fen: int) -> dict[str, int]:
        """The payment split for `payable_fen`: the typed amounts, and the rest by the chosen tender."""
        split = {t: self.cleaned_data.get(t) or 0 for t in self.TENDERS}
        rest = payable_fen - sum(split.values())
        if rest > 0:
            split[self.cleaned_data.get("rest_by") or "cash"] += rest
        return {t: v for t, v in split.items() if v}


class CounterTopUpForm(OfficeFormMixin, forms.Form):
    member_no = forms.CharField(widget=forms.HiddenInput)
    package = forms.ModelChoiceField(
        label=_("Recharge package"), queryset=RechargePackage.objects.none(), required=False, empty_label=_("None")
    )
    amount = YuanField(label=_("Amount (yuan)"), required=False)
    tender = forms.ChoiceField(
        label=_("Paid by"),
        choices=[
            ("cash", pgettext_lazy("tender", "Cash")),
            ("card", pgettext_lazy("tender", "Bank card")),
            ("wechat", pgettext_lazy("tender", "WeChat Pay")),
            ("alipay", pgettext_lazy("tender", "Alipay")),
        ],
        initial="cash",
    )
    idempotency_key = forms.RegexField(regex=_KEY, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, packages: QuerySet[RechargePackage], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = packages  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        package, amount = data.get("package"), data.get("amount")
        if package is None and amount is None and "amount" not in self.errors:
            self.add_error("amount", _("Enter an amount or choose a package."))
        if package is not None:
            data["amount"] = package.pay_fen
        return data


class CounterCouponForm(OfficeFormMixin, forms.Form):
    member_no = forms.CharField(widget=forms.HiddenInput)
    code = forms.CharField(label=_("Coupon code"), max_length=32)
    idempotency_key = forms.RegexField(regex=_KEY, required=False, widget=forms.HiddenInput)


class CounterRegisterForm(OfficeFormMixin, forms.Form):
    phone = forms.CharField(
        label=_("Phone"), max_length=32, widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"})
    )
    name = forms.CharField(label=_("Name"), required=False, max_length=100)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class CounterRefundForm(OfficeFormMixin, forms.Form):
    amount = YuanField(label=_("Refund (yuan)"), required=False, help_text=_("Empty: everything left."))
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
    manager = forms.CharField(label=_("Manager's username"), required=False, max_length=150)
    manager_password = forms.CharField(
        label=_("Manager's password"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    approval = forms.CharField(required=False, max_length=400, widget=forms.HiddenInput)
    idempotency_key = forms.RegexField(regex=_KEY, required=False, widget=forms.HiddenInput)


# ------------------------------------------------------------------ member self-service: sign-in and exchange

# a full-width colon, comma or semicolon (typed with a Chinese keyboard) counts as the ASCII one
_BONUS = re.compile(r"([0-9]{1,3})\s*[:\uff1a]\s*([0-9]{1,6})", re.ASCII)
_BONUS_SEPARATORS = re.compile(r"[\n,;\uff0c\uff1b]+")


class StreakBonusesField(forms.CharField):
    """Streak bonuses as staff type them, one "day: points" a line (7: 20), into [{"day": 7, "points": 20}]."""

    widget = forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})
    default_error_messages = {
        "invalid": _("Write each bonus as the day of the streak, a colon and the points, like 7: 20."),
        "day": _("Streak days go from 1 to 366."),
        "points": _("A bonus gives at least 1 point."),
        "twice": _("Day %(day)s has two bonuses."),
        "many": _("At most %(n)s bonuses."),
    }
    MOST = 30

    def to_python(self, value: Any) -> list[dict[str, int]]:  # type: ignore[override]
        if isinstance(value, list):  # a disabled field cleans its initial value, already a list
            return value
        text = super().to_python(value) or ""
        bonuses: dict[int, int] = {}
        for part in _BONUS_SEPARATORS.split(text):
            if not part.strip():
                continue
            match = _BONUS.fullmatch(part.strip())
            if match is None:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            day, points = int(match[1]), int(match[2])
            if not 1 <= day <= SignInSettings.MAX_BONUS_DAY:
                raise forms.ValidationError(self.error_messages["day"], code="day")
            if points < 1:
                raise forms.ValidationError(self.error_messages["points"], code="points")
            if day in bonuses:
                raise forms.ValidationError(self.error_messages["twice"], code="twice", params={"day": day})
            bonuses[day] = points
        if len(bonuses) > self.MOST:
            raise forms.ValidationError(self.error_messages["many"], code="many", params={"n": self.MOST})
        return [{"day": day, "points": bonuses[day]} for day in sorted(bonuses)]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(f"{b['day']}: {b['points']}" for b in value)
        return value


class SignInSettingsForm(OfficeFormMixin, forms.Form):
    is_enabled = forms.BooleanField(label=_("Members can sign in daily"), required=False)
    points = WholeNumberField(label=_("Points per sign-in"), max_value=100_000)
    growth = WholeNumberField(label=_("Growth value per sign-in"), max_value=100_000, help_text=_("0: none."))
    streak_bonuses = StreakBonusesField(
        label=_("Streak bonuses"),
        required=False,
        help_text=_("Extra points on a day of a streak, one a line: 7: 20 gives 20 more on the 7th day in a row."),
    )
    missed_day_resets = forms.BooleanField(label=_("A missed day starts the streak again"), required=False)
    bonuses_repeat = forms.BooleanField(
        label=_("Start the bonuses over after the last one"),
        required=False,
        help_text=_("With 7: 20 as the last bonus, the 14th, 21st, … day in a row earn it again."),
    )

    def __init__(self, *args: Any, settings_obj: SignInSettings, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "is_enabled": settings_obj.is_enabled,
                "points": settings_obj.points,
                "growth": settings_obj.growth,
                "streak_bonuses": settings_obj.streak_bonuses,
                "missed_day_resets": settings_obj.missed_day_resets,
                "bonuses_repeat": settings_obj.bonuses_repeat,
            },
        )
        super().__init__(*args, **kwargs)
        self.settings_obj = settings_obj

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        gives = data.get("points") or data.get("growth") or data.get("streak_bonuses")
        if data.get("is_enabled") and not gives and not self.errors:
            self.add_error(None, _("An open sign-in must give points, growth value or a streak bonus."))
        return data

    def apply(self) -> SignInSettings:
        obj, data = self.settings_obj, self.cleaned_data
        obj.is_enabled = data["is_enabled"]
        obj.points = data["points"]
        obj.growth = data["growth"]
        obj.streak_bonuses = data["streak_bonuses"]
        obj.missed_day_resets = data["missed_day_resets"]
        obj.bonuses_repeat = data["bonuses_repeat"]
        return obj


EXCHANGE_ICONS = [
    ("gift", _("Gift")),
    ("ticket-perforated", _("Coupon")),
    ("percent", _("Discount")),
    ("cup-hot", _("Hot drink")),
    ("cup-straw", _("Cold drink")),
    ("cake2", _("Cake")),
    ("egg-fried", _("Meal")),
    ("bag", _("Bag")),
    ("basket", _("Basket")),
    ("truck", _("Delivery")),
    ("scissors", _("Service")),
    ("flower1", _("Flower")),
    ("gem", _("Gem")),
    ("star", _("Star")),
    ("heart", _("Heart")),
]


class ExchangeItemForm(OfficeFormMixin, forms.Form):
    """An item of the points exchange: what it gives (a coupon template; a gift template for a gift handed over at
    the counter), its price, stock, per-member limit and when it is open."""

    name = forms.CharField(label=pgettext_lazy("an exchange item", "Name"), max_length=100)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Shown to members."),
    )
    icon = forms.ChoiceField(label=_("Icon"), choices=EXCHANGE_ICONS, initial="gift")
    coupon_template = forms.ModelChoiceField(
        label=_("Gives"),
        queryset=CouponTemplate.objects.none(),
        help_text=_("A coupon; for a gift handed over at the counter, a coupon of kind gift (under Coupons)."),
    )
    points_price = WholeNumberField(label=_("Price (points)"), min_value=1, max_value=100_000_000)
    stock = WholeNumberField(label=_("Stock"), required=False, help_text=_("Empty: unlimited."))
    per_member_limit = WholeNumberField(
        label=_("Per member and month"),
        required=False,
        min_value=1,
        help_text=_("Exchanges of this item by one member in a calendar month. Empty: no limit."),
    )
    available_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Empty: from now."),
    )
    available_until = forms.DateField(
        label=_("Until (last day)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Empty: no end."),
    )
    month_day_from = WholeNumberField(
        label=_("From day of the month"),
        required=False,
        min_value=1,
        max_value=31,
        help_text=_("Only on some days of each month, e.g. from 20 to the end. Empty: from the 1st."),
    )
    month_day_to = WholeNumberField(
        label=_("To day of the month"),
        required=False,
        min_value=1,
        max_value=31,
        help_text=_("Empty: to the end of the month; 31 is the last day of a shorter month."),
    )
    sort_order = WholeNumberField(
        label=pgettext_lazy("sort order", "Order"),
        max_value=9_999,
        initial=0,
        help_text=_("Lower numbers come first for members."),
    )
    is_active = forms.BooleanField(label=_("Offered"), required=False, initial=True)

    def __init__(self, *args: Any, item: ExchangeItem | None = None, **kwargs: Any) -> None:
        self.item = item
        if item is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": item.name,
                "description": item.description,
                "icon": item.icon,
                "coupon_template": item.coupon_template_id,
                "points_price": item.points_price,
                "stock": item.stock,
                "per_member_limit": item.per_member_limit,
                "available_from": item.available_from,
                "available_until": item.available_until,
                "month_day_from": item.month_day_from,
                "month_day_to": item.month_day_to,
                "sort_order": item.sort_order,
                "is_active": item.is_active,
            }
        super().__init__(*args, **kwargs)
        template = self.fields["coupon_template"]
        assert isinstance(template, forms.ModelChoiceField)
        chosen = Q(pk=item.coupon_template_id) if item is not None else Q(pk__in=[])
        template.queryset = CouponTemplate.objects.filter(Q(is_active=True) | chosen).order_by("name", "pk")
        icon = self.fields["icon"]
        if item is not None and item.icon not in dict(EXCHANGE_ICONS):  # an icon set elsewhere stays choosable
            assert isinstance(icon, forms.ChoiceField)
            icon.choices = [*EXCHANGE_ICONS, (item.icon, item.icon)]

    @property
    def exchanged(self) -> int:
        return self.item.exchanged if self.item is not None else 0

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("available_from"), data.get("available_until")
        if start and end and start > end:
            self.add_error("available_until", _("The last day is before the first."))
        elif end and end < timezone.localdate() and (self.item is None or end != self.item.available_until):
            self.add_error("available_until", _("The last day has already passed."))
        first, last = data.get("month_day_from"), data.get("month_day_to")
        if first is not None and last is not None and first > last:
            self.add_error("month_day_to", _("The last day of the month is before the first."))
        stock = data.get("stock")
        if stock is not None and stock < self.exchanged:
            message = _("%(n)s were exchanged already; the stock cannot be lower.") % {"n": self.exchanged}
            self.add_error("stock", message)
        template = data.get("coupon_template")
        if template is not None and template.validity == CouponTemplate.Validity.FIXED:
            assert template.valid_until is not None
            if template.valid_until < timezone.localdate():
                self.add_error("coupon_template", _("This coupon's last valid day has passed."))
        return data

    def apply(self, item: ExchangeItem) -> ExchangeItem:
        data = self.cleaned_data
        item.name = data["name"]
        item.description = data["description"]
        item.icon = data["icon"]
        item.coupon_template = data["coupon_template"]
        item.points_price = data["points_price"]
        item.stock = data["stock"]
        item.per_member_limit = data["per_member_limit"]
        item.available_from = data["available_from"]
        item.available_until = data["available_until"]
        item.month_day_from = data["month_day_from"]
        item.month_day_to = data["month_day_to"]
        item.sort_order = data["sort_order"]
        item.is_active = data["is_active"]
        return item
