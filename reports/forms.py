from django import forms
from django.utils.translation import gettext_lazy as _

from members.forms import OfficeFormMixin
from reports.jobs import JOB_LABELS, JOBS


class RunJobForm(OfficeFormMixin, forms.Form):
    job = forms.ChoiceField(label=_("Job"), choices=[(name, JOB_LABELS.get(name, name)) for name in JOBS])
    business_date = forms.DateField(label=_("Business date"), widget=forms.DateInput(attrs={"type": "date"}))
