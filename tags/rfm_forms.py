"""Forms of the RFM segment table and the lifecycle thresholds."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from members.forms import OfficeFormMixin
from tags.models import LifecycleSettings

SCORES = [(n, str(n)) for n in range(1, 6)]


class SegmentRowForm(OfficeFormMixin, forms.Form):
    id = forms.IntegerField(widget=forms.HiddenInput, required=False)
    name = forms.CharField(label=_("Segment"), max_length=40)
    r_min = forms.TypedChoiceField(label=_("R from"), choices=SCORES, coerce=int)
    r_max = forms.TypedChoiceField(label=_("R to"), choices=SCORES, coerce=int)
    f_min = forms.TypedChoiceField(label=_("F from"), choices=SCORES, coerce=int)
    f_max = forms.TypedChoiceField(label=_("F to"), choices=SCORES, coerce=int)
    m_min = forms.TypedChoiceField(label=_("M from"), choices=SCORES, coerce=int, initial=1)
    m_max = forms.TypedChoiceField(label=_("M to"), choices=SCORES, coerce=int, initial=5)

    def has_changed(self) -> bool:
        if not self.initial:  # the blank row for a new segment counts only once it has a name
            return bool(str(self.data.get(self.add_prefix("name")) or "").strip())
        return super().has_changed()

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if name.startswith("~"):
            raise forms.ValidationError(_("A segment's name cannot start with ~."))
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("r_min") and data.get("r_max") and data["r_min"] > data["r_max"]:
            self.add_error("r_max", _("R to must be at least R from."))
        if data.get("f_min") and data.get("f_max") and data["f_min"] > data["f_max"]:
            self.add_error("f_max", _("F to must be at least F from."))
        if data.get("m_min") and data.get("m_max") and data["m_min"] > data["m_max"]:
            self.add_error("m_max", _("M to must be at least M from."))
        return data


class SegmentRowsFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    """The rows kept (filled in and not deleted), in the order shown; names unique, at least one row."""

    def ordered_rows(self) -> list[forms.Form]:
        return [
            form
            for form in self.forms
            if form.has_changed() or form.initial
            if not (self.can_delete and form.cleaned_data.get("DELETE"))
            if form.cleaned_data.get("name")
        ]

    def ordered_rows_data(self) -> list[dict[str, Any]]:
        return [form.cleaned_data for form in self.ordered_rows()]

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        names = [form.cleaned_data["name"].casefold() for form in self.ordered_rows()]
        if not names:
            raise forms.ValidationError(_("Keep at least one segment."))
        if len(names) != len(set(names)):
            raise forms.ValidationError(_("Two segments have the same name."))


class LifecycleSettingsForm(OfficeFormMixin, forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = LifecycleSettings
        fields = ["new_days", "new_max_purchases", "active_days", "churned_days"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        active, churned = data.get("active_days"), data.get("churned_days")
        if active is not None and churned is not None and churned < active:
            self.add_error("churned_days", _("Churned must come after active: at least as many days."))
        for name in ("new_days", "active_days", "churned_days"):
            if data.get(name) == 0:
                self.add_error(name, _("At least one day."))
        return data
