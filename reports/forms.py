from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from members.forms import OfficeFormMixin
from reports import services
from reports.jobs import JOB_LABELS, JOBS


class RunJobForm(OfficeFormMixin, forms.Form):
    job = forms.ChoiceField(label=_("Job"), choices=[(name, JOB_LABELS.get(name, name)) for name in JOBS])
    business_date = forms.DateField(label=_("Business date"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean_business_date(self) -> date:
        # a run of a day that has not closed would count as done, so the nightly run would skip that day
        day: date = self.cleaned_data["business_date"]
        if day > services.last_closed_business_date():
            raise forms.ValidationError(_("Only a business day that has closed can be run."))
        return day
