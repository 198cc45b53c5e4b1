import re
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member, PaidPlan, Staff, Store
from members.roles import Role


class OfficeFormMixin:
    """Tabler's classes on every widget, and is-invalid on fields with errors; no form library needed."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # fields are per-instance copies, so this touches no other form
            if not isinstance(field.widget, forms.CheckboxInput | forms.HiddenInput):
                field.widget.attrs["class"] = (
                    "form-select" if isinstance(field.widget, forms.Select) else "form-control"
                )

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        for name in self.errors:  # type: ignore[attr-defined]
            if name in self.fields and "class" in self.fields[name].widget.attrs:
                self.fields[name].widget.attrs["class"] += " is-invalid"


class StaffLoginForm(AuthenticationForm):
    error_messages = {
        "invalid_login": _("Wrong username or password."),
        "inactive": _("This account is disabled."),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autofocus": True, "autocomplete": "username"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class StaffForm(OfficeFormMixin, forms.Form):
    first_name = forms.CharField(label=_("Name"), max_length=150, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.CASHIER)
    store = forms.ModelChoiceField(
        label=_("Store"),
        queryset=Store.objects.filter(is_active=True).order_by("code"),
        required=False,
        empty_label=_("All stores"),
        help_text=_("Required for cashiers: they see only this store."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("role") == Role.CASHIER and not data.get("store"):
            self.add_error("store", _("A cashier must belong to a store."))
        return data


class StaffCreateForm(StaffForm):
    username = forms.RegexField(
        label=_("Username"),
        max_length=150,
        regex=r"^[\w.@+-]+\Z",
        error_messages={"invalid": _("Letters, digits and @/./+/-/_ only.")},
    )
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput(render_value=False))
    field_order = ["username", "first_name", "email", "role", "store", "password"]

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        # the would-be user, so UserAttributeSimilarityValidator can refuse a password like the username
        user = User(**{k: self.cleaned_data.get(k, "") for k in ("username", "first_name", "email")})
        password_validation.validate_password(password, user)
        return str(password)


class StaffEditForm(StaffForm):
    user: User | None = None  # the staff member's user, for the password similarity check
    is_active = forms.BooleanField(label=_("Active"), required=False)
    new_password = forms.CharField(
        label=_("New password"),
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text=_("Leave empty to keep the current password."),
    )

    @classmethod
    def for_staff(cls, staff: Staff, data=None) -> "StaffEditForm":  # type: ignore[no-untyped-def]
        initial = {
            "first_name": staff.user.first_name,
            "email": staff.user.email,
            "role": staff.role,
            "store": staff.store,
            "is_active": staff.user.is_active,
        }
        form = cls(data, initial=initial)
        form.user = staff.user
        if staff.store_id:  # keep a deactivated store choosable, so other edits can still be saved
            field = form.fields["store"]
            field.queryset = Store.objects.filter(Q(is_active=True) | Q(pk=staff.store_id)).order_by("code")  # type: ignore[attr-defined]
        return form

    def clean_new_password(self) -> str:
        password = self.cleaned_data["new_password"]
        if password:
            password_validation.validate_password(password, self.user)
        return str(password)


class StoreForm(OfficeFormMixin, forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Store
        fields = ["code", "name", "address", "phone", "is_active"]
        help_texts = {"code": _("Short code used by terminals and imports, e.g. SH-01.")}

    def clean_code(self) -> str:
        code = str(self.cleaned_data["code"]).upper()  # SH-01 and sh-01 are the same store
        clash = Store.objects.filter(code__iexact=code).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("A store with this code already exists."))
        return code


# ------------------------------------------------------------------ members and paid plans

_YUAN = re.compile(r"(\d{1,9})(?:\.(\d{1,2}))?", re.ASCII)  # ASCII: full-width digits are refused


def yuan_to_fen(text: str) -> int:
    """'299.00' → 29900 with integer arithmetic; raises ValueError for anything else ('1e3', '+12', '-1')."""
    match = _YUAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    yuan, fen = match.groups()
    return int(yuan) * 100 + int((fen or "0").ljust(2, "0"))


def yuan_text(fen: int) -> str:
    """29900 → '299.00'; -1 → '-0.01'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class MemberForm(OfficeFormMixin, forms.Form):
    """Registration and edit; members.services does the real checking and names the field at fault."""

    phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        help_text=_("A mainland mobile number needs no +86."),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    name = forms.CharField(label=_("Name"), required=False, max_length=100)
    gender = forms.ChoiceField(label=_("Gender"), choices=Member.Gender.choices, initial=Member.Gender.UNKNOWN)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    email = forms.CharField(label=_("E-mail"), required=False, max_length=254)
    marketing_consent = forms.BooleanField(label=_("Agrees to receive marketing messages"), required=False)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    @classmethod
    def for_registration(cls, data: Any = None, *, store: Store | None, stores: Any = None) -> "MemberForm":
        form = cls(data)
        if stores is not None:  # owners and managers choose the store; a cashier's is always their own
            form.fields["store"] = forms.ModelChoiceField(
                label=_("Store of registration"), queryset=stores, required=False, initial=store, empty_label="—"
            )
            form.fields["store"].widget.attrs["class"] = "form-select"
        return form

    @classmethod
    def for_member(cls, member: Member, data: Any = None, *, phone_editable: bool = True) -> "MemberForm":
        initial = {
            "phone": member.phone.as_e164 if member.phone else "",
            "name": member.name,
            "gender": member.gender,
            "birthday": member.birthday,
            "email": member.email,
            "marketing_consent": member.marketing_consent,
            "notes": member.notes,
        }
        form = cls(data, initial=initial)
        # the version the form was opened on: a save over a change made meanwhile (by the member in the portal,
        # or another staff member) is refused instead of quietly undoing it
        form.fields["version"] = forms.CharField(
            widget=forms.HiddenInput, initial=member.updated_at.isoformat(), required=False
        )
        form.fields["phone"].required = bool(member.phone)  # imported members may have none yet
        if not phone_editable:
            del form.fields["phone"]  # cashiers see phones masked, so they cannot edit them either
        return form


class ReasonForm(OfficeFormMixin, forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class CancelForm(OfficeFormMixin, forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)
    confirm = forms.BooleanField(label=_("I understand that personal data is erased and cannot be restored."))


class PlanGrantForm(OfficeFormMixin, forms.Form):
    plan = forms.ModelChoiceField(
        label=_("Paid plan"), queryset=PaidPlan.objects.filter(is_active=True).order_by("name", "pk")
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)


class PaidPlanForm(OfficeFormMixin, forms.Form):
    name = forms.CharField(label=_("Plan name"), max_length=100)
    price = forms.CharField(label=_("Price (yuan)"), max_length=16, help_text=_("For example 299.00"))
    duration = forms.ChoiceField(label=_("Duration"), choices=PaidPlan.Duration.choices)
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    @classmethod
    def for_plan(cls, plan: PaidPlan | None, data: Any = None) -> "PaidPlanForm":
        if plan is None:
            return cls(data)
        initial = {
            "name": plan.name,
            "price": yuan_text(plan.price_fen),
            "duration": plan.duration,
            "is_active": plan.is_active,
            "description": plan.description,
        }
        return cls(data, initial=initial)

    def clean_price(self) -> int:
        try:
            return yuan_to_fen(self.cleaned_data["price"])
        except ValueError:
            raise forms.ValidationError(_("Enter an amount in yuan like 299.00 (at most two decimals).")) from None
