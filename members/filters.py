"""The member list's search box, filters, sorting and keyset pagination.

Every search shape and every sort is served by an index on members_member, so a page costs the same at
10,000 and at 1,000,000 members: no OFFSET paging and no exact COUNT(*) over the whole register.
"""

import base64
import binascii
import functools
import itertools
import json
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Right
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from members.forms import OfficeFormMixin
from members.models import Member, Staff, Store
from members.roles import Role
from tags import selectors as tags_selectors
from tags.models import MemberTag, Tag

PAGE_SIZES = (25, 50, 100)
EXACT_COUNT_LIMIT = 1_000  # above this the list says "1,000+" instead of counting
NAME_SORT_LIMIT = 1_000  # no index orders by name, so sorting by it is offered for small selections only
DEFAULT_SORT = "-registered_at"
SORTS = {
    "registered_at": _("Registered, oldest first"),
    "-registered_at": _("Registered, newest first"),
    "member_no": _("Member number, ascending"),
    "-member_no": _("Member number, descending"),
    "name": _("Name, A to Z"),
    "-name": _("Name, Z to A"),
}
CONSENT_CHOICES = [("", _("Any")), ("yes", _("Consented")), ("no", _("Not consented"))]
SEARCH_NOISE = re.compile(r"[\s\-()]")


class MemberFilterForm(OfficeFormMixin, forms.Form):
    """GET parameters of the member list; a value that does not parse is reported and then ignored."""

    q = forms.CharField(label=_("Search"), max_length=100, required=False)
    type = forms.ChoiceField(label=_("Member type"), choices=[("", _("Any")), *Member.Type.choices], required=False)
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("Any")), *Member.Status.choices], required=False)
    channel = forms.ChoiceField(label=_("Channel"), choices=[("", _("Any")), *Member.Channel.choices], required=False)
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False)
    registered_from = forms.DateField(
        label=_("Registered from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    registered_to = forms.DateField(
        label=_("Registered to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    consent = forms.ChoiceField(label=_("Marketing consent"), choices=CONSENT_CHOICES, required=False)
    # one tag, or several: members holding any of them
    tag = forms.TypedMultipleChoiceField(label=_("Tags"), coerce=int, required=False)
    sort = forms.ChoiceField(label=_("Sort"), choices=list(SORTS.items()), required=False)
    page_size = forms.TypedChoiceField(
        label=_("Per page"), choices=[(n, n) for n in PAGE_SIZES], coerce=int, required=False
    )
    after = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)
    before = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def __init__(self, *args: Any, stores: QuerySet[Store], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        store_field = self.fields["store"]
        assert isinstance(store_field, forms.ModelChoiceField)
        store_field.queryset = stores
        store_field.empty_label = str(_("All stores"))
        tag_field = self.fields["tag"]
        assert isinstance(tag_field, forms.TypedMultipleChoiceField)
        tag_field.choices = functools.cache(tag_choices)  # read when first needed, then once per form
        tag_field.widget.attrs.update({"data-placeholder": _("Any tag"), "size": 4})
        self.fields["q"].widget.attrs.update(
            {
                "placeholder": _("Phone, last 4 digits, member number, name, pinyin or external id"),
                "autocomplete": "off",
                "type": "search",
            }
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("registered_from"), data.get("registered_to")
        if start and end and start > end:
            self.add_error("registered_to", _("The end date is before the start date."))
        return data

    def value(self, name: str, default: Any = None) -> Any:
        """The cleaned value of a field, or the default when it was empty or did not parse."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        value = self.cleaned_data.get(name)
        return default if value in (None, "") else value


def tag_choices() -> list[tuple[str, list[tuple[int, str]]]]:
    """Every tag as (id, label), grouped under its group's label in the groups' order (one query)."""
    tags = Tag.objects.select_related("group").order_by("group__position", "group_id", "kind", "name", "code", "pk")
    return [
        (group.label, [(tag.pk, tag.label) for tag in grouped])
        for group, grouped in itertools.groupby(tags, key=operator.attrgetter("group"))
    ]


def tags_any_q(tags: Iterable[Tag]) -> Q:
    """A condition on Member: holds at least one of `tags` (none given: nobody). Manual and rule tags are MemberTag
    rows, so several of them make one EXISTS (... tag IN ...), which PostgreSQL runs as one semi-join over the
    (tag, member) index; an OR of one EXISTS per tag would test every member row against each tag in turn
    (a full scan of the register for a rare tag). Every other tag is its own tags.selectors.tag_members_q."""
    tags = list(tags)
    stored = [tag.pk for tag in tags if tag.kind in (Tag.Kind.MANUAL, Tag.Kind.RULE)]
    conditions = [tags_selectors.tag_members_q(tag) for tag in tags if len(stored) < 2 or tag.pk not in stored]
    if len(stored) >= 2:
        conditions.append(Q(Exists(MemberTag.objects.filter(member=OuterRef("pk"), tag__in=stored))))
    return functools.reduce(operator.or_, conditions) if conditions else Q(pk__in=[])


# ------------------------------------------------------------------ search


def member_search(qs: QuerySet[Member], text: str) -> QuerySet[Member]:
    """Narrow qs by what staff typed in the one search box. Each shape uses its own index:
    +86 / 11 digits → phone (unique), 4 digits → the last four digits of the phone (expression index),
    10+ digits → member number (unique), anything else → external id, or a prefix of the name, its pinyin
    or its initials (text_pattern_ops indexes)."""
    text = text.strip()
    if not text:
        return qs
    compact = SEARCH_NOISE.sub("", text)
    digits = compact.removeprefix("+")
    if digits.isdigit():
        if len(digits) == 4 and not compact.startswith("+"):
            return qs.alias(phone_last4=Right("phone", 4)).filter(phone_last4=digits)
        condition = Q(external_id=compact)
        for phone in _phones(compact):
            condition |= Q(phone=phone)
        if len(digits) >= 10 and not compact.startswith("+"):
            condition |= Q(member_no=digits)
        return qs.filter(condition)
    lowered = text.lower()
    return qs.filter(
        Q(external_id=text)
        | Q(name__startswith=text)
        | Q(name_pinyin__startswith=lowered.replace(" ", ""))
        | Q(name_initials__startswith=lowered)
    )


def _phones(compact: str) -> list[str]:
    """The E.164 numbers a string of digits may mean (mainland numbers are typed without +86)."""
    digits = compact.removeprefix("+")
    if compact.startswith("+"):
        return [compact]
    if len(digits) == 11 and digits.startswith("1"):
        return ["+86" + digits]
    if len(digits) == 13 and digits.startswith("861"):
        return ["+" + digits]
    return []


def member_filter(qs: QuerySet[Member], form: MemberFilterForm) -> QuerySet[Member]:
    """Apply the search and the filters of a bound form (fields that did not parse are ignored)."""
    qs = member_search(qs, form.value("q", ""))
    for field, column in (("type", "member_type"), ("status", "status"), ("channel", "channel")):
        if value := form.value(field):
            qs = qs.filter(**{column: value})
    if store := form.value("store"):
        qs = qs.filter(registered_store=store)
    if start := form.value("registered_from"):
        qs = qs.filter(registered_at__gte=_local_midnight(start))
    if end := form.value("registered_to"):
        qs = qs.filter(registered_at__lt=_local_midnight(end + timedelta(days=1)))
    if consent := form.value("consent"):
        qs = qs.filter(marketing_consent=(consent == "yes"))
    if tag_ids := form.value("tag"):
        qs = qs.filter(tags_any_q(Tag.objects.filter(pk__in=tag_ids)))
    return qs


def _local_midnight(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def is_unfiltered(form: MemberFilterForm) -> bool:
    return not any(
        form.value(name)
        for name in ("q", "type", "status", "channel", "store", "registered_from", "registered_to", "tag")
    ) and not form.value("consent")


# ------------------------------------------------------------------ counting


@dataclass(frozen=True)
class Count:
    value: int
    approximate: bool = False  # the planner's estimate of the whole register
    capped: bool = False  # at least `value`; counting stopped there

    @property
    def text(self) -> str:
        return f"{self.value:,}"


def member_count(qs: QuerySet[Member], *, whole_register: bool) -> Count:
    """Exact up to EXACT_COUNT_LIMIT, "1,000+" beyond; the planner's estimate for the whole register."""
    if whole_register:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'members_member'::regclass")
            row = cursor.fetchone()
        estimate = int(row[0]) if row else -1
        if estimate > EXACT_COUNT_LIMIT:  # -1 before the first ANALYZE; small tables are counted exactly
            return Count(estimate, approximate=True)
    found = count_sample(qs).count()
    if found > EXACT_COUNT_LIMIT:
        return Count(EXACT_COUNT_LIMIT, capped=True)
    return Count(found)


def count_sample(qs: QuerySet[Member]) -> QuerySet[Member]:
    """The rows the exact count looks at. Left unordered on purpose: for a common match (a popular surname)
    PostgreSQL reads the table until it has EXACT_COUNT_LIMIT + 1 rows (about 10 ms, whatever the register's
    size), which beats walking an index through scattered rows (about 200 ms at a million members)."""
    return qs.order_by()[: EXACT_COUNT_LIMIT + 1]


# ------------------------------------------------------------------ keyset pagination


@dataclass(frozen=True)
class Page:
    members: list[Member]
    next_cursor: str | None
    previous_cursor: str | None
    sort: str


def _sort_column(sort: str) -> tuple[str, bool]:
    return sort.lstrip("-"), sort.startswith("-")


def _key_of(member: Member, column: str) -> str:
    value = getattr(member, column)
    return value.isoformat() if isinstance(value, datetime) else str(value)


def cursor_encode(sort: str, member: Member) -> str:
    column, _desc = _sort_column(sort)
    raw = json.dumps([sort, _key_of(member, column), member.pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(sort: str, cursor: str) -> tuple[Any, int] | None:
    """(sort value, id) of a cursor made for this sort; None for anything else (a stale or edited link)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, pk = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        return None
    if cursor_sort != sort or not isinstance(value, str) or not isinstance(pk, int) or len(value) > 200:
        return None
    if _sort_column(sort)[0] == "registered_at":
        try:
            moment = parse_datetime(value) if len(value) < 40 else None
        except ValueError:  # well-formed but impossible, e.g. month 13
            return None
        return (moment, pk) if moment and timezone.is_aware(moment) else None
    return value, pk


def _beyond(column: str, descending: bool, key: tuple[Any, int]) -> Q:
    """Rows strictly after `key` in the order (column, id), both descending or both ascending. The
    `column <= value` part is what lets the index scan start at the key instead of at the top."""
    value, pk = key
    op, op_eq = ("lt", "lte") if descending else ("gt", "gte")
    if column == "member_no":  # unique, so no tie-breaker is needed
        return Q(**{f"member_no__{op}": value})
    tie = Q(**{column: value, f"pk__{op}": pk})
    return Q(**{f"{column}__{op_eq}": value}) & (Q(**{f"{column}__{op}": value}) | tie)


def member_page(qs: QuerySet[Member], *, sort: str, size: int, after: str = "", before: str = "") -> Page:
    """One page of qs in `sort` order, after (or before) a cursor; the cursors of its neighbours."""
    column, descending = _sort_column(sort)
    backwards = bool(before) and not after
    key = cursor_decode(sort, before if backwards else after) if (after or before) else None
    walk_descending = descending != backwards
    if key is not None:
        qs = qs.filter(_beyond(column, walk_descending, key))
    prefix = "-" if walk_descending else ""
    order = [f"{prefix}{column}"] if column == "member_no" else [f"{prefix}{column}", f"{prefix}pk"]
    rows = list(qs.select_related("registered_store").order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    has_next = (more if not backwards else True) and bool(rows)
    has_previous = (key is not None if not backwards else more) and bool(rows)
    return Page(
        members=rows,
        next_cursor=cursor_encode(sort, rows[-1]) if has_next else None,
        previous_cursor=cursor_encode(sort, rows[0]) if has_previous else None,
        sort=sort,
    )


# ------------------------------------------------------------------ who sees what


def shows_full_phone(staff: Staff | None) -> bool:
    return staff is not None and staff.role != Role.CASHIER
