"""Forms of the tags pages: a tag, the rule builder (rows of conditions posted as plain fields, read into a rule
and back), giving a member a tag, and the bulk forms (an imported file, a filtered member list)."""

import dataclasses
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from django import forms
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import dates
from django.utils.translation import gettext_lazy as _

from members import spreadsheets
from members.forms import OfficeFormMixin, yuan_text, yuan_to_fen
from members.models import Store
from tags import rules, services
from tags.models import MemberTagEvent, Tag, TagGroup
from tiers.models import Tier

ACTIONS = [
    (MemberTagEvent.Action.ADDED, _("Give the tag")),
    (MemberTagEvent.Action.REMOVED, _("Take the tag away")),
]


def staff_groups() -> QuerySet[TagGroup]:
    """The groups staff put tags in (the system groups are filled by the nightly jobs)."""
    return TagGroup.objects.exclude(dimension__in=TagGroup.SYSTEM_DIMENSIONS).order_by("position", "pk")


def manual_tags() -> QuerySet[Tag]:
    return (
        Tag.objects.filter(kind=Tag.Kind.MANUAL, is_active=True)
        .select_related("group")
        .order_by("group__position", "group_id", "name", "pk")
    )


class GroupChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: TagGroup) -> str:  # type: ignore[override]
        return obj.label


class TagChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Tag) -> str:  # type: ignore[override]
        return f"{obj.group.label} · {obj.label}"


class TagForm(OfficeFormMixin, forms.Form):
    """A manual or rule tag; the kind is chosen once. The rule comes from the builder (RuleBuilder)."""

    name = forms.CharField(label=_("Name"), max_length=60)
    group = GroupChoiceField(label=_("Group"), queryset=TagGroup.objects.none(), empty_label=None)
    kind = forms.ChoiceField(
        label=_("Members are tagged"),
        choices=[(Tag.Kind.MANUAL, _("By staff, by hand or in bulk")), (Tag.Kind.RULE, _("By a rule, every night"))],
        widget=forms.RadioSelect,
        initial=Tag.Kind.MANUAL,
    )
    colour = forms.CharField(
        label=_("Colour"), max_length=7, initial="#206bc4", widget=forms.TextInput(attrs={"type": "color"})
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)

    def __init__(self, *args: Any, tag: Tag | None = None, **kwargs: Any) -> None:
        if tag is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": tag.name,
                    "group": tag.group_id,
                    "kind": tag.kind,
                    "colour": tag.colour,
                    "description": tag.description,
                },
            )
        super().__init__(*args, **kwargs)
        group_field = self.fields["group"]
        assert isinstance(group_field, forms.ModelChoiceField)
        group_field.queryset = staff_groups()
        self.fields["kind"].widget.attrs["class"] = "form-check-input"
        self.fields["colour"].widget.attrs["class"] = "form-control form-control-color"
        if tag is not None:  # a tag keeps its kind: its members came by it
            self.fields["kind"].disabled = True


class SystemTagForm(OfficeFormMixin, forms.Form):
    """What staff may change of a system tag."""

    colour = forms.CharField(label=_("Colour"), max_length=7, widget=forms.TextInput(attrs={"type": "color"}))
    description = forms.CharField(label=_("Description"), max_length=200, required=False)

    def __init__(self, *args: Any, tag: Tag, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"colour": tag.colour, "description": tag.description})
        super().__init__(*args, **kwargs)
        self.fields["colour"].widget.attrs["class"] = "form-control form-control-color"


class MemberTagAddForm(OfficeFormMixin, forms.Form):
    tag = TagChoiceField(label=_("Tag"), queryset=Tag.objects.none(), empty_label=_("Choose a tag"))
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def __init__(self, *args: Any, held: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tag_field = self.fields["tag"]
        assert isinstance(tag_field, forms.ModelChoiceField)
        tag_field.queryset = manual_tags().exclude(pk__in=held or [])


class TagImportForm(OfficeFormMixin, forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("Excel (.xlsx) or CSV with a member_no column, a phone column or both; one member a row."),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv,text/csv"}),
    )
    action = forms.ChoiceField(label=_("What to do"), choices=ACTIONS, initial=MemberTagEvent.Action.ADDED)

    def clean_file(self) -> Any:
        return spreadsheets.upload_checked(self.cleaned_data["file"], services.tag_import_read)


class BulkFilterForm(OfficeFormMixin, forms.Form):
    """The tag to give to (or take from) every member of a filtered member list."""

    target = TagChoiceField(label=_("Tag"), queryset=Tag.objects.none(), empty_label=_("Choose a tag"))
    action = forms.ChoiceField(label=_("What to do"), choices=ACTIONS, initial=MemberTagEvent.Action.ADDED)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target = self.fields["target"]
        assert isinstance(target, forms.ModelChoiceField)
        target.queryset = manual_tags()


class MemberNumbersField(forms.MultipleChoiceField):
    def valid_value(self, value: str) -> bool:
        return value.isdigit() and len(value) <= 20


class BulkSelectionForm(BulkFilterForm):
    """The members ticked on the member list (by member number), and the tag to give or take away."""

    member = MemberNumbersField(required=False)
    query = forms.CharField(required=False, max_length=2000)

    def clean_member(self) -> list[str]:
        chosen: list[str] = self.cleaned_data.get("member") or []
        if not chosen:
            raise forms.ValidationError(_("Tick the members to tag first."))
        if len(chosen) > services.BATCH:
            raise forms.ValidationError(_("Tick at most %(n)d members at a time.") % {"n": services.BATCH})
        return chosen


# ------------------------------------------------------------------ the rule builder

MONTHS = [(str(number), name) for number, name in dates.MONTHS.items()]
FEN_KEYS = {"spend": ("min_fen", "max_fen"), "balance": ("min_fen", "max_fen")}
COUNT_KEYS = {"purchase_count": ("min", "max"), "points": ("min", "max")}
DEFAULT_FIELD = "spend"


def new_key() -> str:
    return "r" + uuid4().hex[:8]


@dataclass
class ConditionRow:
    """One condition as its inputs show it: numbers and yuan as text, lists as strings."""

    key: str
    parent: str = ""  # the key of its group; empty at the top level
    field: str = DEFAULT_FIELD
    days: str = ""
    low: str = ""
    high: str = ""
    include_never: bool = False
    this_month: bool = False
    values: list[str] = dataclasses.field(default_factory=list)
    text: str = ""  # categories, comma-separated

    @property
    def is_group(self) -> bool:
        return False

    @classmethod
    def from_leaf(cls, leaf: dict[str, Any], *, key: str, parent: str = "") -> "ConditionRow":
        name = leaf.get("field", DEFAULT_FIELD)
        row = cls(key=key, parent=parent, field=name)
        row.days = str(leaf.get("days") or "")
        if name in FEN_KEYS:
            low, high = (leaf.get(k) for k in FEN_KEYS[name])
            row.low = yuan_text(low) if isinstance(low, int) else ""
            row.high = yuan_text(high) if isinstance(high, int) else ""
        if name in COUNT_KEYS:
            low, high = (leaf.get(k) for k in COUNT_KEYS[name])
            row.low = "" if low is None else str(low)
            row.high = "" if high is None else str(high)
        row.include_never = bool(leaf.get("include_never"))
        row.this_month = bool(leaf.get("this_month"))
        if name == "birthday_month":
            row.values = [str(m) for m in leaf.get("months", [])]
        elif name == "top_category":
            row.text = ", ".join(leaf.get("values", []))
        else:
            row.values = [str(v) for v in leaf.get("values", [])]
        return row

    @classmethod
    def from_data(cls, data: QueryDict, key: str, *, parent: str = "") -> "ConditionRow":
        """The row as posted."""
        name = data.get(f"{key}-field", DEFAULT_FIELD)
        return cls(
            key=key,
            parent=parent,
            field=name if name in rules.FIELDS else DEFAULT_FIELD,
            days=data.get(f"{key}-days", "").strip(),
            low=data.get(f"{key}-low", "").strip(),
            high=data.get(f"{key}-high", "").strip(),
            include_never=bool(data.get(f"{key}-include_never")),
            this_month=bool(data.get(f"{key}-this_month")),
            values=data.getlist(f"{key}-values"),
            text=data.get(f"{key}-text", "").strip(),
        )

    def leaf(self) -> dict[str, Any]:
        """The condition for rules.rule_clean (which reports what does not parse)."""
        leaf: dict[str, Any] = {"field": self.field}
        if self.field in ("registered_within", "spend", "purchase_count", "last_purchase"):
            leaf["days"] = self.days
        if self.field in FEN_KEYS:
            low_key, high_key = FEN_KEYS[self.field]
            leaf[low_key], leaf[high_key] = _fen(self.low), _fen(self.high)
        if self.field in COUNT_KEYS:
            low_key, high_key = COUNT_KEYS[self.field]
            leaf[low_key], leaf[high_key] = self.low, self.high
        if self.field == "last_purchase":
            leaf["include_never"] = self.include_never
        if self.field == "birthday_month":
            leaf["this_month"], leaf["months"] = self.this_month, self.values
        if self.field in rules.CHOICE_FIELDS or self.field in rules.REFERENCE_FIELDS:
            leaf["values"] = self.values
        if self.field == "top_category":
            text = self.text.replace("\uff0c", ",")  # a Chinese comma separates too
            leaf["values"] = [part.strip() for part in text.split(",")]
        return leaf


def _fen(text: str) -> int | str | None:
    if not text:
        return None
    try:
        return yuan_to_fen(text)
    except ValueError:
        return text  # rule_clean refuses it with a message


@dataclass
class GroupRow:
    key: str
    match: str = "any"
    conditions: list[ConditionRow] = dataclasses.field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return True


@dataclass
class RuleBuilder:
    """The builder's state: the match of the whole rule and its rows (conditions and groups of conditions)."""

    match: str = "all"
    items: list[ConditionRow | GroupRow] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    cleaned: dict[str, Any] | None = None

    @classmethod
    def from_rule(cls, rule: dict[str, Any] | None) -> "RuleBuilder":
        if not rule or not rule.get("conditions"):
            return cls(items=[ConditionRow(key=new_key())])
        items: list[ConditionRow | GroupRow] = []
        for condition in rule["conditions"]:
            if "conditions" in condition:
                group = GroupRow(key=new_key(), match=condition.get("match", "any"))
                group.conditions = [
                    ConditionRow.from_leaf(c, key=new_key(), parent=group.key) for c in condition["conditions"]
                ]
                items.append(group)
            else:
                items.append(ConditionRow.from_leaf(condition, key=new_key()))
        return cls(match=rule.get("match", "all"), items=items)

    @classmethod
    def from_data(cls, data: QueryDict) -> "RuleBuilder":
        """The rows in the order posted: `node` lists each row's key ("g…" groups, "r…" conditions) in page
        order; a condition names its group in `<key>-parent`."""
        match = data.get("match", "all")
        builder = cls(match=match if match in rules.MATCHES else "all")
        groups: dict[str, GroupRow] = {}
        for key in data.getlist("node")[: rules.MAX_CONDITIONS * (rules.MAX_CONDITIONS + 1)]:
            if not key.isalnum() or len(key) > 20:
                continue
            if key.startswith("g"):
                group_match = data.get(f"{key}-match", "any")
                groups[key] = GroupRow(key=key, match=group_match if group_match in rules.MATCHES else "any")
                builder.items.append(groups[key])
                continue
            parent = data.get(f"{key}-parent", "")
            row = ConditionRow.from_data(data, key, parent=parent if parent in groups else "")
            if row.parent:
                groups[row.parent].conditions.append(row)
            else:
                builder.items.append(row)
        return builder

    def rule(self) -> dict[str, Any]:
        conditions: list[dict[str, Any]] = []
        for item in self.items:
            if isinstance(item, GroupRow):
                conditions.append({"match": item.match, "conditions": [c.leaf() for c in item.conditions]})
            else:
                conditions.append(item.leaf())
        return {"match": self.match, "conditions": conditions}

    def is_valid(self) -> bool:
        try:
            self.cleaned = rules.rule_clean(self.rule())
        except rules.RuleError as exc:
            self.errors = list(exc.messages)
            return False
        return True


@dataclass
class BuilderChoices:
    """What the rows' pickers offer, read once per page."""

    fields: list[tuple[str, str]]
    stores: list[tuple[str, str]]
    tiers: list[tuple[str, str]]
    months: list[tuple[str, str]]
    choices: dict[str, list[tuple[str, str]]]
    categories: list[str]

    @classmethod
    def load(cls) -> "BuilderChoices":
        return cls(
            fields=[(name, str(label)) for name, label in rules.FIELDS.items()],
            stores=[(str(pk), name) for pk, name in Store.objects.order_by("code", "pk").values_list("pk", "name")],
            tiers=[(str(pk), name) for pk, name in Tier.objects.order_by("rank").values_list("pk", "name")],
            months=[(number, str(name)) for number, name in MONTHS],
            choices={
                name: [(str(value), str(label)) for value, label in model.choices]
                for name, (_column, model) in rules.CHOICE_FIELDS.items()
            },
            categories=[
                code.removeprefix(services.PREFERENCE_PREFIX)
                for code in services.preference_tags().order_by("code").values_list("code", flat=True)[:200]
            ],
        )
