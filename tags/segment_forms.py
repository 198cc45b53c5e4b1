"""The segment builder: a form whose fields are the conditions of a segment definition (tags.segments)."""

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.dates import MONTHS
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from members import filters as members_filters
from members.forms import OfficeFormMixin
from members.models import Member, Store
from tags import segments
from tags.models import RfmSegment, Segment, Stage
from tiers.models import Tier

SCORE_CHOICES = [("", "—"), *((n, str(n)) for n in range(segments.SCORE_MIN, segments.SCORE_MAX + 1))]
# form field ← the definition's path, for the messages segments.segment_clean gives
FIELD_OF_PATH = {
    "tags.any": "tags_any",
    "tags.all": "tags_all",
    "tags.none": "tags_none",
    "lifecycle": "lifecycle",
    "rfm.segments": "rfm_segments",
    "rfm.r": "r_min",
    "rfm.f": "f_min",
    "rfm.m": "m_min",
    "tiers": "tiers",
    "member.type": "type",
    "member.status": "status",
    "member.channel": "channel",
    "member.store": "store",
    "member.registered_from": "registered_from",
    "member.registered_to": "registered_to",
    "member.consent": "consent",
    "member.birthday_month": "birthday_month",
    "name": "name",
}
MULTIPLE_FIELDS = ("tags_any", "tags_all", "tags_none", "lifecycle", "rfm_segments", "tiers")
MEMBER_MULTIPLE_FIELDS = ("type", "status", "channel", "store", "birthday_month")


def _rfm_segment_choices() -> list[tuple[str, str]]:
    return [(row.name, row.label) for row in RfmSegment.objects.order_by("position", "pk")]


def _tier_choices() -> list[tuple[int, str]]:
    return [(tier.pk, tier.name) for tier in Tier.objects.order_by("rank")]


def _store_choices() -> list[tuple[int, str]]:
    return [(store.pk, store.name) for store in Store.objects.order_by("code", "pk")]


def _multiple(label: Any, *, typed: bool = False, help_text: Any = "") -> forms.MultipleChoiceField:
    if typed:
        return forms.TypedMultipleChoiceField(label=label, coerce=int, required=False, help_text=help_text)
    return forms.MultipleChoiceField(label=label, required=False, help_text=help_text)


def _score(label: Any) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(label=label, choices=SCORE_CHOICES, coerce=int, empty_value=None, required=False)


class SegmentConditionsForm(OfficeFormMixin, forms.Form):
    """The conditions alone: what the live count reads. definition() is the segment definition they make."""

    tags_any = _multiple(_("Holds any of these tags"), typed=True)
    tags_all = _multiple(_("Holds all of these tags"), typed=True)
    tags_none = _multiple(_("Holds none of these tags"), typed=True)
    lifecycle = _multiple(_("Lifecycle stage"))
    rfm_segments = _multiple(_("RFM segment"))
    r_min = _score(_("R from"))
    r_max = _score(_("R to"))
    f_min = _score(_("F from"))
    f_max = _score(_("F to"))
    m_min = _score(_("M from"))
    m_max = _score(_("M to"))
    tiers = _multiple(_("Tier"), typed=True)
    type = _multiple(_("Member type"))
    status = _multiple(_("Status"))
    channel = _multiple(_("Channel"))
    store = _multiple(_("Store of registration"), typed=True)
    registered_from = forms.DateField(
        label=_("Registered from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    registered_to = forms.DateField(
        label=_("Registered to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    consent = forms.ChoiceField(label=_("Marketing consent"), choices=members_filters.CONSENT_CHOICES, required=False)
    birthday_month = _multiple(_("Birthday month"), typed=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tags = functools.cache(members_filters.tag_choices)  # one query, shared by the three pickers
        lazy: dict[str, Callable[[], Sequence[tuple[Any, Any]]]] = {
            "tags_any": tags,
            "tags_all": tags,
            "tags_none": tags,
            "rfm_segments": functools.cache(_rfm_segment_choices),
            "tiers": functools.cache(_tier_choices),
            "store": functools.cache(_store_choices),
        }
        for name, choices in lazy.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices
        fixed: dict[str, Any] = {
            "lifecycle": Stage.choices,
            "type": Member.Type.choices,
            "status": Member.Status.choices,
            "channel": Member.Channel.choices,
            "birthday_month": list(MONTHS.items()),
        }
        for name, choices in fixed.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices
        for name in (*MULTIPLE_FIELDS, *MEMBER_MULTIPLE_FIELDS):
            self.fields[name].widget.attrs["data-placeholder"] = _("Any")
        for name in ("tags_any", "tags_all", "tags_none"):
            self.fields[name].widget.attrs["data-placeholder"] = _("Choose tags")

    def definition(self) -> dict[str, Any]:
        """The segment definition (tags.segments' schema) the valid fields make."""
        data = self.cleaned_data
        definition: dict[str, Any] = {"v": segments.SCHEMA_VERSION}
        tags = {mode: data.get(f"tags_{mode}") or [] for mode in segments.TAG_MODES}
        if any(tags.values()):
            definition["tags"] = {mode: ids for mode, ids in tags.items() if ids}
        if data.get("lifecycle"):
            definition["lifecycle"] = data["lifecycle"]
        rfm: dict[str, Any] = {}
        if data.get("rfm_segments"):
            rfm["segments"] = data["rfm_segments"]
        for score in segments.SCORES:
            low, high = data.get(f"{score}_min"), data.get(f"{score}_max")
            if low is not None or high is not None:
                rfm[score] = [low or segments.SCORE_MIN, high or segments.SCORE_MAX]
        if rfm:
            definition["rfm"] = rfm
        if data.get("tiers"):
            definition["tiers"] = data["tiers"]
        member: dict[str, Any] = {name: data[name] for name in MEMBER_MULTIPLE_FIELDS if data.get(name)}
        for name in ("registered_from", "registered_to"):
            if data.get(name):
                member[name] = data[name].isoformat()
        if data.get("consent"):
            member["consent"] = data["consent"] == "yes"
        if member:
            definition["member"] = member
        return definition

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                self.cleaned_definition = segments.segment_clean(self.definition())
            except ValidationError as exc:
                self.add_definition_errors(exc)
        return data

    def add_definition_errors(self, exc: ValidationError) -> None:
        """Put segments' messages on the fields they are about (the rest above the form)."""
        for path, messages in exc.message_dict.items():
            name = FIELD_OF_PATH.get(path)
            for message in messages:
                self.add_error(name if name in self.fields else None, message)

    @staticmethod
    def initial_for(definition: dict[str, Any]) -> dict[str, Any]:
        """The form's initial values for a saved definition."""
        tags, rfm, member = definition.get("tags", {}), definition.get("rfm", {}), definition.get("member", {})
        initial: dict[str, Any] = {f"tags_{mode}": tags.get(mode, []) for mode in segments.TAG_MODES}
        initial["lifecycle"] = definition.get("lifecycle", [])
        initial["rfm_segments"] = rfm.get("segments", [])
        for score in segments.SCORES:
            if bounds := rfm.get(score):
                initial[f"{score}_min"], initial[f"{score}_max"] = bounds
        initial["tiers"] = definition.get("tiers", [])
        initial.update({name: member.get(name, []) for name in MEMBER_MULTIPLE_FIELDS})
        initial.update({name: member[name] for name in ("registered_from", "registered_to") if member.get(name)})
        if (consent := member.get("consent")) is not None:
            initial["consent"] = "yes" if consent else "no"
        return initial


class SegmentForm(SegmentConditionsForm):
    """The builder: a name and a description, then the conditions."""

    name = forms.CharField(label=pgettext_lazy("segment", "Name"), max_length=80)
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    field_order = ["name", "description"]

    def __init__(self, *args: Any, segment: Segment | None = None, **kwargs: Any) -> None:
        if segment is not None and not args and "data" not in kwargs:
            kwargs["initial"] = {
                "name": segment.name,
                "description": segment.description,
                **self.initial_for(segment.definition),
            }
        super().__init__(*args, **kwargs)
        self.segment = segment

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        taken = Segment.objects.filter(name=name)
        if self.segment is not None:
            taken = taken.exclude(pk=self.segment.pk)
        if taken.exists():
            raise ValidationError(_("A segment with this name already exists."))
        return name
