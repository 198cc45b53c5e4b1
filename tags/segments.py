"""Segments: saved filters over tags and member fields. This module is the stable API that exports and
campaigns use; it knows nothing of forms, requests or templates.

    segment_members(segment_or_definition) -> QuerySet[Member]
        Every member the segment holds now, unordered (order it yourself, e.g. by "pk" for keyset batches).
        A Segment or a definition (a dict) is accepted; a malformed definition raises ValidationError.
    segment_count(segment_or_definition) -> members.filters.Count
        Cheap enough for every page view at a million members: exact up to 1,000, then "1,000+" (capped),
        and the planner's estimate when there are no conditions at all (the whole register).
    segment_clean(definition) -> dict
        The definition checked against the schema and the database, in canonical form (lists sorted and
        without repeats, empty conditions dropped); raises ValidationError({path: [messages]}) where path
        names the condition ("tags.any", "rfm.r", "member.registered_to", ...).
    segment_save(segment=, by=) / segment_delete(segment=, by=)
        Audited writes (pghistory context: the user and the action).
    segment_refresh_count(segment) -> int
        Counts exactly and stores the count and the time on the segment.
    segment_count_soon(segment) -> int | None
        The same within COUNT_IN_REQUEST_MS; a longer count goes to a task and None is returned.

A definition is a JSON object; every key is optional. Keys combine with AND; a list inside a key means "any of
these"; a missing or empty key is no condition, so {"v": 1} holds every member.

    {
      "v": 1,                                    version of this schema (missing: 1)
      "tags": {"any":  [tag id, ...],            holds at least one of these tags
               "all":  [tag id, ...],            holds every one of them
               "none": [tag id, ...]},           holds none of them
      "lifecycle": ["new", "active", "silent", "churned"],   stage (MemberLifecycle)
      "rfm": {"segments": [RfmSegment.name, ...],             RFM segment (RfmScore.segment)
              "r": [low, high], "f": [low, high], "m": [low, high]},   score ranges 1-5, both ends included
      "tiers": [tier id, ...],                   current tier; the base tier also holds members without a tier row
      "member": {"type": ["registered", "stored_value", "paid"],
                 "status": ["active", "frozen", "cancelled"],
                 "channel": ["store", "portal", "import", "referral", "campaign", "api"],
                 "store": [store id, ...],       store of registration
                 "registered_from": "YYYY-MM-DD", "registered_to": "YYYY-MM-DD",   local dates, both included
                 "consent": true | false,        marketing consent
                 "birthday_month": [1-12, ...]}
    }

Any tag works in the tag lists, whatever its kind: tags.selectors.tag_members_q decides who holds it (lifecycle
and RFM tags read their own tables). Tags are deactivated, never deleted, except an RFM segment's tag when the
segment table loses that segment, which tags.rfm refuses while a saved segment names the segment or its tag; a
renamed RFM segment is renamed in saved definitions too. A tag missing all the same is held by nobody. Members that
the last RFM run did not score (no purchase in its window) match no RFM condition. A segment holds members of
every status unless "member.status" says otherwise: a campaign that must reach only active members who agreed
to marketing adds those conditions (or filters the queryset) itself.
"""

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

import pghistory
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from config.celery import task_send
from config.db import TooSlow, within
from members import filters as members_filters
from members.models import Member, Store
from tags import selectors as tags_selectors
from tags.models import RfmSegment, Segment, Stage, Tag
from tiers.models import MemberTier, Tier

SCHEMA_VERSION = 1
TAG_MODES = ("any", "all", "none")
SCORES = ("r", "f", "m")
SCORE_MIN, SCORE_MAX = 1, 5
MEMBER_CHOICES: dict[str, Any] = {"type": Member.Type, "status": Member.Status, "channel": Member.Channel}
MEMBER_KEYS = (*MEMBER_CHOICES, "store", "registered_from", "registered_to", "consent", "birthday_month")
TOP_KEYS = ("v", "tags", "lifecycle", "rfm", "tiers", "member")
SECTION_KEYS = {"tags": TAG_MODES, "rfm": ("segments", *SCORES), "member": MEMBER_KEYS}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NOBODY = Q(pk__in=[])
COUNT_IN_REQUEST_MS = 1_500  # an exact count a page waits for; a longer one is taken by a task


class _Errors:
    """Messages collected by condition path, so one pass reports everything that is wrong."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)

    def raise_any(self) -> None:
        if self.by_path:
            raise ValidationError(self.by_path)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the schema


def _section(definition: Mapping[str, Any], key: str, errors: _Errors) -> Mapping[str, Any]:
    value = definition.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.add(key, _("“%(key)s” must be an object.") % {"key": key})
        return {}
    for name in value:
        if name not in SECTION_KEYS[key]:
            errors.add(key, _("Unknown condition “%(key)s”.") % {"key": f"{key}.{name}"})
    return value


def _list(value: Any, path: str, errors: _Errors) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        errors.add(path, _("“%(key)s” must be a list.") % {"key": path})
        return []
    return list(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ids(value: Any, path: str, errors: _Errors) -> list[int]:
    items = _list(value, path, errors)
    if any(not _is_int(v) or v <= 0 for v in items):
        errors.add(path, _("“%(key)s” must be a list of ids (whole numbers).") % {"key": path})
        return []
    return sorted(set(items))


def _choices(value: Any, path: str, allowed: Iterable[str], errors: _Errors) -> list[str]:
    allowed = list(allowed)
    items = _list(value, path, errors)
    unknown = [v for v in items if v not in allowed]
    if unknown:
        errors.add(path, _("Unknown value: %(values)s.") % {"values": ", ".join(map(str, unknown))})
    return [v for v in allowed if v in items]  # in the choices' own order, each once


def _score_range(value: Any, path: str, errors: _Errors) -> list[int]:
    if value is None:
        return []
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(_is_int(v) and SCORE_MIN <= v <= SCORE_MAX for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        errors.add(
            path,
            _("A score range is two scores from %(low)d to %(high)d, the lower first.")
            % {"low": SCORE_MIN, "high": SCORE_MAX},
        )
        return []
    return [value[0], value[1]]


def _date(value: Any, path: str, errors: _Errors) -> str | None:
    if value in (None, ""):
        return None
    try:
        if not isinstance(value, str) or not ISO_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value).isoformat()
    except ValueError:
        errors.add(path, _("Enter a date as YYYY-MM-DD."))
        return None


def _structure(definition: Any, errors: _Errors) -> dict[str, Any]:
    """The definition in canonical form, checked against the schema only (not against the database)."""
    if not isinstance(definition, Mapping):
        errors.add(NON_FIELD_ERRORS, _("A segment definition must be a JSON object."))
        return {"v": SCHEMA_VERSION}
    version = definition.get("v", SCHEMA_VERSION)
    if not _is_int(version) or version != SCHEMA_VERSION:
        errors.add("v", _("This is version %(v)s of the segment definition; only version 1 is known.") % {"v": version})
    for key in definition:
        if key not in TOP_KEYS:
            errors.add(NON_FIELD_ERRORS, _("Unknown condition “%(key)s”.") % {"key": key})
    clean: dict[str, Any] = {"v": SCHEMA_VERSION}

    tags = _section(definition, "tags", errors)
    chosen = {mode: ids for mode in TAG_MODES if (ids := _ids(tags.get(mode), f"tags.{mode}", errors))}
    if chosen:
        clean["tags"] = chosen

    if stages := _choices(definition.get("lifecycle"), "lifecycle", Stage.values, errors):
        clean["lifecycle"] = stages

    rfm = _section(definition, "rfm", errors)
    rfm_clean: dict[str, Any] = {}
    names = _list(rfm.get("segments"), "rfm.segments", errors)
    if any(not isinstance(n, str) or not n for n in names):
        errors.add("rfm.segments", _("“%(key)s” must be a list of segment names.") % {"key": "rfm.segments"})
    elif names:
        rfm_clean["segments"] = sorted(set(names))
    for score in SCORES:
        if bounds := _score_range(rfm.get(score), f"rfm.{score}", errors):
            rfm_clean[score] = bounds
    if rfm_clean:
        clean["rfm"] = rfm_clean

    if tiers := _ids(definition.get("tiers"), "tiers", errors):
        clean["tiers"] = tiers

    member = _section(definition, "member", errors)
    member_clean: dict[str, Any] = {}
    for name, choices in MEMBER_CHOICES.items():
        if values := _choices(member.get(name), f"member.{name}", choices.values, errors):
            member_clean[name] = values
    if stores := _ids(member.get("store"), "member.store", errors):
        member_clean["store"] = stores
    start = _date(member.get("registered_from"), "member.registered_from", errors)
    end = _date(member.get("registered_to"), "member.registered_to", errors)
    if start and end and start > end:
        errors.add("member.registered_to", _("The end date is before the start date."))
    if start:
        member_clean["registered_from"] = start
    if end:
        member_clean["registered_to"] = end
    consent = member.get("consent")
    if consent is not None and not isinstance(consent, bool):
        errors.add("member.consent", _("Marketing consent is true or false."))
    elif consent is not None:
        member_clean["consent"] = consent
    months = _list(member.get("birthday_month"), "member.birthday_month", errors)
    if any(not _is_int(m) or not 1 <= m <= 12 for m in months):
        errors.add("member.birthday_month", _("Birthday months are numbers from 1 to 12."))
    elif months:
        member_clean["birthday_month"] = sorted(set(months))
    if member_clean:
        clean["member"] = member_clean
    return clean


def _missing(path: str, wanted: Iterable[int], found: Iterable[int], errors: _Errors, message: str) -> None:
    missing = sorted(set(wanted) - set(found))
    if missing:
        errors.add(path, message % {"ids": ", ".join(map(str, missing))})


def segment_clean(definition: Any) -> dict[str, Any]:
    """The definition checked (schema, then tags, tiers, stores and RFM segments that exist) and in canonical
    form. Raises ValidationError({path: [messages]}) naming every problem."""
    errors = _Errors()
    clean = _structure(definition, errors)
    tags = clean.get("tags", {})
    tag_ids = {i for ids in tags.values() for i in ids}
    known = set(Tag.objects.filter(pk__in=tag_ids).values_list("pk", flat=True)) if tag_ids else set()
    for mode in TAG_MODES:
        _missing(f"tags.{mode}", tags.get(mode, []), known, errors, _("No tag has the id %(ids)s."))
    wanted = set(tags.get("any", [])) | set(tags.get("all", []))
    if both := sorted(wanted & set(tags.get("none", []))):
        shown = ", ".join(t.label for t in Tag.objects.filter(pk__in=both).order_by("pk")) or ", ".join(map(str, both))
        errors.add("tags.none", _("A tag cannot be both wanted and excluded: %(tags)s.") % {"tags": shown})
    if names := clean.get("rfm", {}).get("segments"):
        existing = set(RfmSegment.objects.filter(name__in=names).values_list("name", flat=True))
        if unknown := [n for n in names if n not in existing]:
            errors.add("rfm.segments", _("No RFM segment is called %(names)s.") % {"names": ", ".join(unknown)})
    if tier_ids := clean.get("tiers"):
        tiers_found = Tier.objects.filter(pk__in=tier_ids).values_list("pk", flat=True)
        _missing("tiers", tier_ids, tiers_found, errors, _("No tier has the id %(ids)s."))
    if store_ids := clean.get("member", {}).get("store"):
        stores_found = Store.objects.filter(pk__in=store_ids).values_list("pk", flat=True)
        _missing("member.store", store_ids, stores_found, errors, _("No store has the id %(ids)s."))
    errors.raise_any()
    return clean


# ------------------------------------------------------------------ the members a definition holds


def _definition(source: Segment | Mapping[str, Any]) -> dict[str, Any]:
    errors = _Errors()
    clean = _structure(source.definition if isinstance(source, Segment) else source, errors)
    errors.raise_any()
    return clean


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _tags_conditions(tags: Mapping[str, list[int]]) -> list[Q]:
    ids = {i for chosen in tags.values() for i in chosen}
    found = {t.pk: t for t in Tag.objects.filter(pk__in=ids)} if ids else {}
    conditions = []
    if "any" in tags:
        conditions.append(members_filters.tags_any_q(found[i] for i in tags["any"] if i in found))
    for i in tags.get("all", []):
        conditions.append(tags_selectors.tag_members_q(found[i]) if i in found else NOBODY)
    conditions += [~tags_selectors.tag_members_q(found[i]) for i in tags.get("none", []) if i in found]
    return conditions


def _tiers_condition(tier_ids: list[int]) -> Q:
    base = Tier.objects.order_by("rank").values_list("pk", flat=True).first()
    if base in tier_ids:  # members without a tier row stand on the base tier
        return ~Q(Exists(MemberTier.objects.filter(member=OuterRef("pk")).exclude(tier__in=tier_ids)))
    return Q(Exists(MemberTier.objects.filter(member=OuterRef("pk"), tier__in=tier_ids)))


def _member_conditions(member: Mapping[str, Any]) -> list[Q]:
    conditions = []
    for name, column in (("type", "member_type"), ("status", "status"), ("channel", "channel")):
        if values := member.get(name):
            conditions.append(Q(**{column: values[0]}) if len(values) == 1 else Q(**{f"{column}__in": values}))
    if stores := member.get("store"):
        conditions.append(Q(registered_store__in=stores))
    if start := member.get("registered_from"):
        conditions.append(Q(registered_at__gte=_local_midnight(date.fromisoformat(start))))
    if end := member.get("registered_to"):
        conditions.append(Q(registered_at__lt=_local_midnight(date.fromisoformat(end) + timedelta(days=1))))
    if (consent := member.get("consent")) is not None:
        conditions.append(Q(marketing_consent=consent))
    if months := member.get("birthday_month"):
        conditions.append(Q(birthday__month__in=months))
    return conditions


def _conditions(definition: Mapping[str, Any]) -> list[Q]:
    conditions = _tags_conditions(definition.get("tags", {}))
    if stages := definition.get("lifecycle"):
        conditions.append(Q(lifecycle__stage__in=stages))
    rfm = definition.get("rfm", {})
    if names := rfm.get("segments"):
        conditions.append(Q(rfm__segment__in=names))
    for score in SCORES:
        if bounds := rfm.get(score):
            conditions.append(Q(**{f"rfm__{score}__range": tuple(bounds)}))
    if tier_ids := definition.get("tiers"):
        conditions.append(_tiers_condition(tier_ids))
    return conditions + _member_conditions(definition.get("member", {}))


def segment_members(source: Segment | Mapping[str, Any]) -> QuerySet[Member]:
    """The members a segment (or a definition) holds now, unordered. Raises ValidationError for a malformed
    definition; ids of tags, tiers or stores that no longer exist hold nobody."""
    return Member.objects.filter(*_conditions(_definition(source)))


def segment_is_everyone(source: Segment | Mapping[str, Any]) -> bool:
    """True when the definition has no condition at all: it holds the whole register."""
    return _definition(source) == {"v": SCHEMA_VERSION}


def segment_count(source: Segment | Mapping[str, Any]) -> members_filters.Count:
    """How many members the segment holds, as the member list counts: exact up to
    members.filters.EXACT_COUNT_LIMIT, "at least that many" beyond, the planner's estimate for everyone."""
    return members_filters.member_count(segment_members(source), whole_register=segment_is_everyone(source))


# ------------------------------------------------------------------ writes


def segment_refresh_count(segment: Segment) -> int:
    """Count the segment's members exactly and keep the count and the time on the segment (untracked fields:
    no history row). Returns the count."""
    count = segment_members(segment).count()
    now = timezone.now()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, counted_at=now)
    segment.member_count, segment.counted_at = count, now
    return count


def segment_count_soon(segment: Segment) -> int | None:
    """segment_refresh_count if it takes at most COUNT_IN_REQUEST_MS; otherwise the count is left to a task
    (queued when the caller's transaction commits) and None returned, the segment keeping its last count."""
    try:
        return within(COUNT_IN_REQUEST_MS, lambda: segment_refresh_count(segment))
    except TooSlow:
        segment_id = segment.pk  # queued without retrying the broker: a broker that is down fails at once
        transaction.on_commit(lambda: task_send("tags.tasks.segment_count_task", segment_id=segment_id), robust=True)
        return None


def _lock_named(definition: Any) -> None:
    """Lock the RFM segments and tags a definition names, so that the segment table's save (tags.rfm), which
    renames or removes them under its own locks, either waits for this save and sees it, or has happened and
    the definition is checked against what it left."""
    if not isinstance(definition, Mapping):
        return
    rfm, tags = definition.get("rfm"), definition.get("tags")
    names = rfm.get("segments") if isinstance(rfm, Mapping) else None
    if isinstance(names, list) and (names := [n for n in names if isinstance(n, str)]):
        list(RfmSegment.objects.select_for_update(no_key=True).filter(name__in=names).values_list("pk"))
    if isinstance(tags, Mapping):
        ids = [i for mode in TAG_MODES if isinstance(tags.get(mode), list) for i in tags[mode] if _is_int(i)]
        if ids:
            list(Tag.objects.select_for_update(no_key=True).filter(pk__in=ids).values_list("pk"))


def segment_save(*, segment: Segment, by: User | None) -> Segment:
    """Create or change a segment (audited by pghistory) after cleaning its definition, then count its members
    when the definition is new or changed (segment_count_soon: until the count is in, a changed segment reads
    as not counted). Raises ValidationError for a bad definition or a name in use."""
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="segment_save"):
        _lock_named(segment.definition)
        segment.definition = segment_clean(segment.definition)
        if Segment.objects.filter(name=segment.name).exclude(pk=segment.pk).exists():
            raise ValidationError({"name": [_("A segment with this name already exists.")]})
        is_new = segment.pk is None
        changed = is_new or Segment.objects.filter(pk=segment.pk).values_list("definition", flat=True).first() != (
            segment.definition
        )
        if is_new:
            segment.created_by = segment.created_by or by
            segment.save()
        else:
            # the count fields belong to segment_refresh_count: never written back from a stale instance
            segment.save(update_fields=["name", "description", "definition", "updated_at"])
        if changed:
            Segment.objects.filter(pk=segment.pk).update(member_count=0, counted_at=None)
            segment.member_count, segment.counted_at = 0, None
    if changed:
        segment_count_soon(segment)
    return segment


def segment_delete(*, segment: Segment, by: User | None) -> None:
    """Delete a segment (audited by pghistory)."""
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="segment_delete"):
        segment.delete()
