"""Forms of the member portal's sign-in: plain POST forms, phone-first widgets."""

import unicodedata
from typing import Any

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from members.models import ConsentRecord, Member
from members.portal_auth import CODE_DIGITS
from members.services import CONSENT_WORDING, NAME_MAX, MemberError, normalise_phone

MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


class PhoneField(forms.CharField):
    """A mobile number as members type it (mainland numbers need no +86), cleaned to E.164."""

    widget = forms.TextInput(
        attrs={"type": "tel", "inputmode": "tel", "autocomplete": "tel", "placeholder": "138 0000 0000"}
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(label=_("Mobile number"), max_length=32, **kwargs)

    def clean(self, value: Any) -> str:
        raw = super().clean(value)
        try:
            phone = normalise_phone(unicodedata.normalize("NFKC", raw))
        except MemberError as exc:
            raise forms.ValidationError(_("Enter a valid mobile number."), code="invalid") from exc
        number = phonenumbers.parse(phone or "")
        if (
            phonenumbers.region_code_for_number(number) not in settings.HUIYUAN_SMS_REGIONS
            or phonenumbers.number_type(number) not in MOBILE_TYPES
        ):
            raise forms.ValidationError(_("Enter a mobile number that can receive text messages."), code="region")
        return str(phone)


class NextField(forms.CharField):
    widget = forms.HiddenInput

    def __init__(self) -> None:
        super().__init__(required=False, max_length=500)


class PhoneForm(forms.Form):
    phone = PhoneField()
    next = NextField()


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the text message"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "maxlength": str(CODE_DIGITS),
                "placeholder": "••••••",
                "autofocus": True,
                "class": "code-input",
            }
        ),
    )

    def clean_code(self) -> str:
        # full-width digits from a Chinese keyboard, and spaces from a pasted "123 456", are fine
        code = "".join(unicodedata.normalize("NFKC", self.cleaned_data["code"]).split())
        if not (code.isascii() and code.isdigit() and len(code) == CODE_DIGITS):
            raise forms.ValidationError(_("The code has %(n)s digits.") % {"n": CODE_DIGITS}, code="format")
        return code


class RegisterForm(forms.Form):
    name = forms.CharField(
        label=_("Your name"),
        max_length=100,
        required=False,
        help_text=_("Optional: how the staff should greet you."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    marketing_consent = forms.BooleanField(
        label=CONSENT_WORDING[ConsentRecord.Source.PORTAL], required=False, initial=False
    )


class PasswordLoginForm(forms.Form):
    phone = PhoneField()
    password = forms.CharField(
        label=_("Password"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    next = NextField()


class PasswordSetForm(forms.Form):
    """Set or change the portal password; the current one is asked for unless the phone was just proved."""

    current_password = forms.CharField(
        label=_("Current password"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label=_("New password"),
        max_length=128,
        strip=False,
        help_text=_("At least 8 characters, not only digits, not a common password."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password_again = forms.CharField(
        label=_("New password, again"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, ask_current: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not ask_current:
            del self.fields["current_password"]

    def clean_new_password(self) -> str:
        password: str = self.cleaned_data["new_password"]
        password_validation.validate_password(password)
        return password

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_password") and data.get("new_password") != data.get("new_password_again"):
            self.add_error("new_password_again", _("The two passwords differ."))
        return data


class ProfileForm(forms.Form):
    """What members change of themselves. The birthday is offered only while none is set (then staff change it)."""

    name = forms.CharField(
        label=_("Name"),
        max_length=NAME_MAX,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    gender = forms.ChoiceField(label=_("Gender"), choices=Member.Gender.choices, widget=forms.RadioSelect)
    birthday = forms.DateField(
        label=_("Birthday"),
        required=False,
        help_text=_("For your birthday treats. It can be set once; to correct it later, ask at a store."),
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
    )
    email = forms.EmailField(
        label=_("E-mail"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )
    marketing_consent = forms.BooleanField(label=CONSENT_WORDING[ConsentRecord.Source.PORTAL], required=False)

    def __init__(self, *args: Any, member: Member, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "name": member.name,
                "gender": member.gender,
                "birthday": member.birthday,
                "email": member.email,
                "marketing_consent": member.marketing_consent,
            },
        )
        super().__init__(*args, **kwargs)
        if member.birthday is not None:
            del self.fields["birthday"]


class PhoneChangeForm(forms.Form):
    phone = PhoneField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone"].label = _("New mobile number")
