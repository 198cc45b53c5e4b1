"""Writes of tags: tags themselves (manual and rule, audited), members given or relieved of manual tags (one, a
selection, a filtered member list, an imported file), and the nightly `tags_rules` job that keeps rule tags and
preference tags right.

Every change of a member's tags is one set-based statement that changes MemberTag and writes a MemberTagEvent
for each row it actually changed (INSERT ... ON CONFLICT DO NOTHING RETURNING, DELETE ... RETURNING), so
repeating any of them changes nothing and logs nothing twice."""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pghistory
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from config.celery import task_send
from members import filters as members_filters
from members import services as members_services
from members.models import Member, Store
from members.spreadsheets import SpreadsheetError, read_table
from reports.models import JobRun
from tags import rules, selectors
from tags.models import MemberTag, MemberTagEvent, RuleRefresh, Tag, TagGroup
from tags.rules import Sql, sql_join

logger = logging.getLogger(__name__)

Source = MemberTag.Source
Action = MemberTagEvent.Action
BATCH = 5_000  # members per statement when a selection is tagged in batches
IMPORT_BATCH = 1_000  # file rows per lookup
ERRORS_KEPT = 5_000
PREFERENCE_PREFIX = "preference:"
PREFERENCE_COLOUR = "#f76707"
COLOUR_LENGTH = 7
NAME_MAX = 60  # Tag.name
DESCRIPTION_MAX = 200  # Tag.description

Progress = Callable[[int, int, int], None]  # (done, total, changed so far)


class TagError(Exception):
    """A refused change of tags; str(exc) is safe to show to staff; `field` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _user_id(by: User | None) -> int | None:
    return by.pk if by is not None else None


# ------------------------------------------------------------------ tags


def _colour_checked(colour: str) -> str:
    colour = colour.strip().lower()
    if len(colour) != COLOUR_LENGTH or colour[0] != "#" or any(c not in "0123456789abcdef" for c in colour[1:]):
        raise TagError(_("Enter a colour such as #206bc4."), "colour")
    return colour


def tag_save(
    *,
    tag: Tag | None,
    by: User | None,
    group: TagGroup,
    name: str,
    kind: str,
    colour: str,
    description: str = "",
    rule: Mapping[str, Any] | None = None,
) -> Tag:
    """Create (tag=None) or change a manual or rule tag; of a system tag only the colour and description change.
    A rule tag's rule is checked (rules.rule_clean); a new or changed rule is evaluated in the background at once,
    as of today. Audited with the user. Returns the saved tag; raises TagError naming the field at fault."""
    name = " ".join(name.split())
    description = description.strip()
    colour = _colour_checked(colour)
    if len(description) > DESCRIPTION_MAX:
        raise TagError(_("A description has at most %(n)d characters.") % {"n": DESCRIPTION_MAX}, "description")
    if tag is not None and tag.kind == Tag.Kind.SYSTEM:
        if group.pk != tag.group_id or name != tag.name or kind != tag.kind or (rule and rule != tag.rule):
            raise TagError(_("Only the colour and description of a system tag can change."))
        return _tag_write(tag, by, colour=colour, description=description)
    if kind not in (Tag.Kind.MANUAL, Tag.Kind.RULE):
        raise TagError(_("Choose whether members are tagged by staff or by a rule."), "kind")
    if tag is not None and kind != tag.kind:
        raise TagError(_("A tag cannot change between manual and rule; create a new tag instead."), "kind")
    if group.is_system:
        raise TagError(_("This group is filled by the nightly jobs; choose another group."), "group")
    if not name:
        raise TagError(_("Give the tag a name."), "name")
    if len(name) > NAME_MAX:
        raise TagError(_("A name has at most %(n)d characters.") % {"n": NAME_MAX}, "name")
    cleaned: dict[str, Any] = {}
    if kind == Tag.Kind.RULE:
        try:
            cleaned = rules.rule_clean(rule or {})
        except rules.RuleError as exc:
            raise TagError(" ".join(exc.messages), "rule") from None
    target = tag or Tag(kind=kind, created_by=by)
    evaluate = kind == Tag.Kind.RULE and (tag is None or cleaned != tag.rule)
    saved = _tag_write(target, by, group=group, name=name, colour=colour, description=description, rule=cleaned)
    if evaluate and saved.is_active:
        _evaluate_after_commit(saved)
    return saved


def _tag_write(tag: Tag, by: User | None, **values: Any) -> Tag:
    for key, value in values.items():
        setattr(tag, key, value)
    # only the fields changed here: the nightly job may be counting the tag's members meanwhile
    fields = list(values) if tag.pk else None
    try:
        with transaction.atomic(), pghistory.context(user=_user_id(by), action="tag_save"):
            tag.save(update_fields=fields)
    except IntegrityError:
        raise TagError(_("The group already has a tag of this name."), "name") from None
    return tag


def _evaluate_after_commit(tag: Tag) -> None:
    tag_id = tag.pk  # queued without retrying the broker: a broker that is down fails at once
    transaction.on_commit(lambda: task_send("tags.tasks.tag_rule_evaluate_task", tag_id=tag_id), robust=True)


def tag_set_active(*, tag: Tag, active: bool, by: User | None) -> Tag:
    """Deactivate a tag (hidden from pickers; a rule or preference tag is no longer evaluated; its members are
    kept, so reactivating restores it) or reactivate it (a rule tag is then evaluated at once). Lifecycle and
    RFM tags belong to their own jobs and stay active. Raises TagError."""
    kind, _sep, _value = tag.code.partition(":")
    if tag.kind == Tag.Kind.SYSTEM and kind != PREFERENCE_PREFIX.rstrip(":"):
        raise TagError(_("Lifecycle and RFM tags are kept by their own jobs and cannot be deactivated."))
    if tag.is_active == active:
        return tag
    tag.is_active = active
    with (
        transaction.atomic(),
        pghistory.context(user=_user_id(by), action="tag_activate" if active else "tag_deactivate"),
    ):
        tag.save(update_fields=["is_active"])
    if active and tag.kind == Tag.Kind.RULE:
        _evaluate_after_commit(tag)
    return tag


def tag_deactivate(*, tag: Tag, by: User | None) -> Tag:
    """tag_set_active(active=False)."""
    return tag_set_active(tag=tag, active=False, by=by)


# ------------------------------------------------------------------ members given or relieved of a manual tag


def _manual_checked(tag: Tag, *, adding: bool) -> None:
    if tag.kind != Tag.Kind.MANUAL:
        raise TagError(
            _("Only manual tags are given and taken away by staff; rule and system tags follow their rules.")
        )
    if adding and not tag.is_active:
        raise TagError(_("This tag is inactive; reactivate it first."))


def _tag_counted(tag: Tag, change: int) -> None:
    if change:
        Tag.objects.filter(pk=tag.pk).update(
            member_count=Greatest(F("member_count") + change, 0), counted_at=timezone.now()
        )


def _run(statement: Sql) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(statement.text, statement.params)
        row = cursor.fetchone()
    return tuple(row) if row else ()


def _events_sql(
    source: Sql, *, tag_id: Sql, action: str, event_source: str, day: date, by: int | None, reason: str
) -> Sql:
    """INSERT of one event per row of `source` (a CTE with member_id), RETURNING 1."""
    return sql_join(
        [
            Sql(
                "INSERT INTO tags_membertagevent (member_id, tag_id, action, source, business_date, at, by_id, reason)"
                " SELECT s.member_id,"
            ),
            tag_id,
            Sql(", %s, %s, %s, %s, %s, %s FROM", [action, event_source, day, timezone.now(), by, reason[:200]]),
            source,
            Sql("s RETURNING 1"),
        ],
        " ",
    )


def _logged(
    change: Sql, *, name: str, action: str, tag: Tag, source: str, by: int | None, reason: str, day: date
) -> Sql:
    """`change` (a data-modifying CTE body named `name` returning member_id) followed by one event per member it
    changed; the statement returns how many."""
    events = _events_sql(
        Sql(name), tag_id=Sql("%s", [tag.pk]), action=action, event_source=source, day=day, by=by, reason=reason
    )
    return sql_join(
        [Sql(f"WITH {name} AS ("), change, Sql("), logged AS ("), events, Sql(") SELECT count(*) FROM logged")], " "
    )


def _add_statement(tag: Tag, member_ids: Sequence[int], *, source: str, by: int | None, reason: str, day: date) -> Sql:
    insert = Sql(
        "INSERT INTO tags_membertag (member_id, tag_id, source, added_at, added_by_id)"
        " SELECT m.id, %s, %s, %s, %s FROM members_member m WHERE m.id = ANY(%s::bigint[]) AND m.status <> %s"
        " ON CONFLICT (member_id, tag_id) DO NOTHING RETURNING member_id",
        [tag.pk, source, timezone.now(), by, list(member_ids), Member.Status.CANCELLED.value],
    )
    return _logged(insert, name="added", action=Action.ADDED, tag=tag, source=source, by=by, reason=reason, day=day)


def _remove_statement(
    tag: Tag, member_ids: Sequence[int], *, source: str, by: int | None, reason: str, day: date
) -> Sql:
    delete = Sql(
        "DELETE FROM tags_membertag WHERE tag_id = %s AND member_id = ANY(%s::bigint[]) RETURNING member_id",
        [tag.pk, list(member_ids)],
    )
    return _logged(delete, name="removed", action=Action.REMOVED, tag=tag, source=source, by=by, reason=reason, day=day)


def members_tag_add(
    *,
    tag: Tag,
    member_ids: Sequence[int],
    by: User | None,
    source: str = Source.MANUAL,
    reason: str = "",
    business_date: date | None = None,
) -> int:
    """Give a manual tag to the members among `member_ids` who do not hold it yet, in batches of BATCH, each one
    statement (INSERT ... ON CONFLICT DO NOTHING RETURNING) with an event per member actually added. Unknown ids
    and cancelled memberships are skipped. Returns how many were added; raises TagError for a tag that is not
    manual or not active."""
    _manual_checked(tag, adding=True)
    return _batched(_add_statement, 1, tag, member_ids, by=by, source=source, reason=reason, day=business_date)


def members_tag_remove(
    *,
    tag: Tag,
    member_ids: Sequence[int],
    by: User | None,
    source: str = Source.MANUAL,
    reason: str = "",
    business_date: date | None = None,
) -> int:
    """Take a manual tag away from those of `member_ids` who hold it, in batches; an event per member actually
    relieved. Returns how many; raises TagError for a tag that is not manual."""
    _manual_checked(tag, adding=False)
    return _batched(_remove_statement, -1, tag, member_ids, by=by, source=source, reason=reason, day=business_date)


def _batched(
    statement: Callable[..., Sql],
    sign: int,
    tag: Tag,
    member_ids: Sequence[int],
    *,
    by: User | None,
    source: str,
    reason: str,
    day: date | None,
) -> int:
    """Run `statement` (_add_statement or _remove_statement) over `member_ids` in batches of BATCH, each in its
    own transaction with the tag's count moved by `sign` per member changed; returns how many changed."""
    day = day or timezone.localdate()
    changed = 0
    for start in range(0, len(member_ids), BATCH):
        chunk = member_ids[start : start + BATCH]
        with transaction.atomic():
            (count,) = _run(statement(tag, chunk, source=source, by=_user_id(by), reason=reason, day=day))
            _tag_counted(tag, sign * count)
        changed += count
    return changed


def member_tag_add(*, member: Member, tag: Tag, by: User | None, reason: str = "") -> bool:
    """Give one member a manual tag. Returns False when they hold it already; raises TagError for a cancelled
    membership or a tag staff cannot give."""
    if member.status == Member.Status.CANCELLED:
        raise TagError(_("A cancelled membership cannot be tagged."))
    return members_tag_add(tag=tag, member_ids=[member.pk], by=by, reason=reason) == 1


def member_tag_remove(*, member: Member, tag: Tag, by: User | None, reason: str = "") -> bool:
    """Take a manual tag away from one member. Returns False when they did not hold it; raises TagError."""
    return members_tag_remove(tag=tag, member_ids=[member.pk], by=by, reason=reason) == 1


# ------------------------------------------------------------------ a filtered member list


def filtered_members(query: str) -> QuerySet[Member]:
    """The members of the member list with this GET query string (its search and filters; the paging, sort and
    anything that does not parse are ignored, as the list ignores them)."""
    form = members_filters.MemberFilterForm(QueryDict(query), stores=Store.objects.all())
    form.is_valid()
    return members_filters.member_filter(Member.objects.all(), form)


def members_tag_by_filter(
    *, tag: Tag, query: str, action: str, by: User | None, progress: Progress | None = None
) -> tuple[int, int]:
    """Give (action "added") or take away ("removed") a manual tag to every member of a filtered member list, in
    keyset batches by id, each its own transaction: a retried job goes through again and changes only what is
    left. Reports (done, total, changed) after each batch. Returns (members examined, members changed)."""
    _manual_checked(tag, adding=action == Action.ADDED)
    members = filtered_members(query).exclude(status=Member.Status.CANCELLED).order_by("pk")
    total = members.count()
    change = members_tag_add if action == Action.ADDED else members_tag_remove
    day = timezone.localdate()
    done = changed = 0
    after = 0
    if progress:
        progress(0, total, 0)
    while True:
        ids = list(members.filter(pk__gt=after).values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        changed += change(tag=tag, member_ids=ids, by=by, reason=_("member list filter"), business_date=day)
        done += len(ids)
        after = ids[-1]
        if progress:
            progress(done, max(total, done), changed)
    return done, changed


# ------------------------------------------------------------------ an imported file of member numbers or phones

# the column names accepted (lower case, as members.spreadsheets reads them)
MEMBER_NO_COLUMNS = ("member_no", "member number", "会员号", "会员卡号", "卡号")
PHONE_COLUMNS = ("phone", "mobile", "手机号", "手机")


def tag_import_read(uploaded: Any, *, name: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a file of members to tag. Raises SpreadsheetError for a file that cannot be read or
    names neither members' numbers nor phones."""
    headers, rows = read_table(uploaded, name=name)
    if not any(h in MEMBER_NO_COLUMNS or h in PHONE_COLUMNS for h in headers):
        raise SpreadsheetError(_("The file needs a member_no column, a phone column or both."))
    if not rows:
        raise SpreadsheetError(_("The file has column names but no rows."))
    return headers, rows


@dataclass
class ImportOutcome:
    rows: int = 0
    matched: int = 0  # distinct members found
    changed: int = 0  # members actually tagged or untagged
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"row", "column", "message", "values"}
    failed: int = 0  # rows with an error (errors keeps the first ERRORS_KEPT)


def _column(headers: list[str], names: tuple[str, ...]) -> int | None:
    return next((i for i, h in enumerate(headers) if h in names), None)


def members_tag_import(
    *,
    tag: Tag,
    headers: list[str],
    rows: list[list[str]],
    action: str,
    by: User | None,
    file_name: str,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Tag (action "added") or untag ("removed") the members a file names by member number (first) or phone, a
    batch of IMPORT_BATCH rows at a time; rows that name nobody, or a cancelled membership when tagging, are
    reported with their file row number and go no further. Raises TagError for a tag staff cannot change."""
    _manual_checked(tag, adding=action == Action.ADDED)
    no_at, phone_at = _column(headers, MEMBER_NO_COLUMNS), _column(headers, PHONE_COLUMNS)
    outcome = ImportOutcome(rows=len(rows))
    day = timezone.localdate()
    seen: set[int] = set()
    for start in range(0, len(rows), IMPORT_BATCH):
        chunk = list(enumerate(rows[start : start + IMPORT_BATCH], start=start + 2))  # the header is row 1
        ids = _import_resolve(chunk, headers, no_at, phone_at, adding=action == Action.ADDED, outcome=outcome)
        fresh = [pk for pk in dict.fromkeys(ids) if pk not in seen]
        seen.update(fresh)
        if fresh:
            change = members_tag_add if action == Action.ADDED else members_tag_remove
            outcome.changed += change(
                tag=tag, member_ids=fresh, by=by, source=Source.IMPORT, reason=file_name, business_date=day
            )
        if progress:
            progress(min(start + IMPORT_BATCH, len(rows)), len(rows), outcome.changed)
    outcome.matched = len(seen)
    return outcome


def _import_resolve(
    chunk: list[tuple[int, list[str]]],
    headers: list[str],
    no_at: int | None,
    phone_at: int | None,
    *,
    adding: bool,
    outcome: ImportOutcome,
) -> list[int]:
    """The member ids the rows name; the rows that name nobody go to outcome's errors."""
    keys: list[tuple[int, list[str], str, str]] = []  # (row number, values, column, key)
    for number, values in chunk:
        member_no = values[no_at].strip() if no_at is not None else ""
        phone = values[phone_at].strip() if phone_at is not None else ""
        if member_no:
            keys.append((number, values, headers[no_at or 0], member_no))
        elif phone:
            try:
                e164 = members_services.normalise_phone(phone)
            except members_services.MemberError as exc:
                _import_error(outcome, number, headers[phone_at or 0], str(exc), values)
                continue
            keys.append((number, values, headers[phone_at or 0], e164 or ""))
        elif any(values):
            _import_error(outcome, number, "", _("Give a member number or a phone."), values)
    by_no = {k for n, v, c, k in keys if c in MEMBER_NO_COLUMNS}
    by_phone = {k for n, v, c, k in keys if c in PHONE_COLUMNS}
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for member_no, pk, status in Member.objects.filter(member_no__in=by_no).values_list("member_no", "pk", "status"):
        found[("no", member_no)] = (pk, status)
    for phone, pk, status in Member.objects.filter(phone__in=by_phone).values_list("phone", "pk", "status"):
        found[("phone", str(phone))] = (pk, status)
    ids = []
    for number, values, column, key in keys:
        kind = "no" if column in MEMBER_NO_COLUMNS else "phone"
        hit = found.get((kind, key))
        if hit is None:
            message = _("No member has this member number.") if kind == "no" else _("No member has this phone.")
            _import_error(outcome, number, column, message, values)
        elif adding and hit[1] == Member.Status.CANCELLED:
            _import_error(outcome, number, column, _("This membership is cancelled."), values)
        else:
            ids.append(hit[0])
    return ids


def _import_error(outcome: ImportOutcome, row: int, column: str, message: str, values: list[str]) -> None:
    outcome.failed += 1
    if len(outcome.errors) < ERRORS_KEPT:
        outcome.errors.append({"row": row, "column": column, "message": message, "values": values})


# ------------------------------------------------------------------ rule tags and preference tags


def _diff_statement(*, desired: Sql, current: Sql, source: str, day: date, settled: Sql | None = None) -> Sql:
    """One statement that makes MemberTag rows of `current` (a WHERE on alias mt) equal `desired` (a query of
    member_id, tag_id), with an event per row added or removed, leaving alone the rows of `settled` (a query of
    member_id, tag_id) whichever way; it returns (added, removed)."""
    keep = Sql("") if settled is None else sql_join([Sql("EXCEPT"), settled], " ")
    now = timezone.now()
    added_events = _events_sql(
        Sql("added"), tag_id=Sql("s.tag_id"), action=Action.ADDED, event_source=source, day=day, by=None, reason=""
    )
    removed_events = _events_sql(
        Sql("removed"), tag_id=Sql("s.tag_id"), action=Action.REMOVED, event_source=source, day=day, by=None, reason=""
    )
    # The differences are taken with EXCEPT (hashed set operations) and only they touch the table, so a run that
    # changes nothing reads the two sets once and writes nothing; ON CONFLICT covers a refresh of one member that
    # inserted the same row meanwhile, and DELETE ... RETURNING one that removed it.
    return sql_join(
        [
            Sql("WITH desired AS MATERIALIZED ("),
            desired,
            Sql("), held AS MATERIALIZED (SELECT mt.member_id, mt.tag_id FROM tags_membertag mt WHERE"),
            current,
            Sql("), gone AS (SELECT member_id, tag_id FROM held EXCEPT SELECT member_id, tag_id FROM desired"),
            keep,
            Sql("), new AS (SELECT member_id, tag_id FROM desired EXCEPT SELECT member_id, tag_id FROM held"),
            keep,
            Sql(
                "), removed AS (DELETE FROM tags_membertag mt USING gone g"
                " WHERE mt.member_id = g.member_id AND mt.tag_id = g.tag_id RETURNING mt.member_id, mt.tag_id),"
                " added AS (INSERT INTO tags_membertag (member_id, tag_id, source, added_at, added_by_id)"
                " SELECT n.member_id, n.tag_id, %s, %s, NULL FROM new n"
                " ON CONFLICT (member_id, tag_id) DO NOTHING RETURNING member_id, tag_id),",
                [source, now],
            ),
            Sql("logged_added AS ("),
            added_events,
            Sql("), logged_removed AS ("),
            removed_events,
            Sql(") SELECT (SELECT count(*) FROM logged_added), (SELECT count(*) FROM logged_removed)"),
        ],
        " ",
    )


def tag_rule_apply(
    tag: Tag, *, business_date: date, member_ids: Sequence[int] | None = None, rule: Mapping[str, Any] | None = None
) -> tuple[int, int]:
    """Make the members holding a rule tag (among `member_ids`, or all) exactly those its rule holds for as of
    `business_date`, in one statement. Returns (added, removed). Over all members (the night's run, which is
    for the day just closed) a member already evaluated on its own as of a later date (RuleRefresh) is left as
    that found them: a purchase after midnight re-evaluates its member as of today, and the night must not undo
    that."""
    rule = rule if rule is not None else rules.rule_clean(tag.rule, check_references=False)
    matched = rules.rule_sql(rule, as_of=business_date, member_ids=member_ids)
    desired = sql_join(
        [Sql("SELECT x.id AS member_id, %s::bigint AS tag_id FROM (", [tag.pk]), matched, Sql(") x")], " "
    )
    current = Sql("mt.tag_id = %s AND mt.source = %s", [tag.pk, Source.RULE])
    if member_ids is not None:
        current = sql_join([current, Sql("AND mt.member_id = ANY(%s::bigint[])", [list(member_ids)])], " ")
    settled = None
    if member_ids is None:
        settled = Sql(
            "SELECT r.member_id, %s::bigint FROM tags_rulerefresh r WHERE r.business_date > %s", [tag.pk, business_date]
        )
    added, removed = _run(
        _diff_statement(desired=desired, current=current, source=Source.RULE, day=business_date, settled=settled)
    )
    return int(added), int(removed)


def tag_recount(tags: QuerySet[Tag]) -> None:
    """Count the MemberTag rows of these tags again (an index-only count per tag)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tags_tag t SET member_count = (SELECT count(*) FROM tags_membertag mt WHERE mt.tag_id = t.id),"
            " counted_at = %s WHERE t.id = ANY(%s::bigint[])",
            [timezone.now(), list(tags.values_list("pk", flat=True))],
        )


def tag_evaluate(*, tag: Tag, business_date: date) -> tuple[int, int]:
    """Evaluate one rule tag over every member now (after its rule changed); returns (added, removed)."""
    if tag.kind != Tag.Kind.RULE or not tag.is_active:
        return 0, 0
    with transaction.atomic():
        changed = tag_rule_apply(tag, business_date=business_date)
        tag_recount(Tag.objects.filter(pk=tag.pk))
    return changed


def _rule_tags() -> list[tuple[Tag, dict[str, Any]]]:
    """Active rule tags with their clean rules; a stored rule that no longer checks is skipped (and logged)."""
    found = []
    for tag in Tag.objects.filter(kind=Tag.Kind.RULE, is_active=True).order_by("pk"):
        try:
            found.append((tag, rules.rule_clean(tag.rule, check_references=False)))
        except rules.RuleError:
            logger.warning("rule tag %s has a rule that does not check; skipped", tag.pk)
    return found


def rule_tags_refresh_member(member_id: int, business_date: date) -> tuple[int, int]:
    """Evaluate every active rule tag for one member (after a purchase, a registration or an edit), as of
    `business_date`, and note that date (RuleRefresh) for the night's run. Returns (added, removed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tags_rulerefresh (member_id, business_date) SELECT id, %s FROM members_member WHERE id = %s"
            " ON CONFLICT (member_id) DO UPDATE SET business_date = GREATEST(tags_rulerefresh.business_date,"
            " EXCLUDED.business_date)",
            [business_date, member_id],
        )
    added = removed = 0
    for tag, rule in _rule_tags():
        with transaction.atomic():
            plus, minus = tag_rule_apply(tag, business_date=business_date, member_ids=[member_id], rule=rule)
            _tag_counted(tag, plus - minus)
        added, removed = added + plus, removed + minus
    return added, removed


def preference_group() -> TagGroup:
    group = TagGroup.objects.filter(dimension=TagGroup.Dimension.PREFERENCE).order_by("position", "pk").first()
    return group or TagGroup.objects.create(dimension=TagGroup.Dimension.PREFERENCE, position=40)


@transaction.atomic  # the temporary table lives as long as the transaction
def preference_apply(*, business_date: date) -> tuple[int, int]:
    """Give each member the preference tag of their top category (rules.top_categories_sql) as of
    `business_date`, making the missing tags; take away the others. Returns (added, removed)."""
    group = preference_group()
    top = rules.top_categories_sql(business_date)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE tags_top_category ON COMMIT DROP AS SELECT tc.member_id, tc.category"
            f" FROM ({top.text}) tc JOIN members_member m ON m.id = tc.member_id AND m.status <> %s",
            [*top.params, Member.Status.CANCELLED.value],
        )
        # the tags of categories never seen before; ON CONFLICT: a tag of that code exists already
        cursor.execute(
            "INSERT INTO tags_tag (group_id, name, kind, code, description, colour, rule, is_active, member_count,"
            " counted_at, created_by_id, created_at)"
            " SELECT DISTINCT %s::bigint, '', %s, %s::text || category, '', %s, '{}'::jsonb, true, 0,"
            " NULL::timestamptz, NULL::int, %s::timestamptz FROM tags_top_category"
            " ON CONFLICT (code) WHERE NOT (code = '') DO NOTHING",
            [group.pk, Tag.Kind.SYSTEM.value, PREFERENCE_PREFIX, PREFERENCE_COLOUR, timezone.now()],
        )
    desired = Sql(
        "SELECT tc.member_id, t.id AS tag_id FROM tags_top_category tc"
        " JOIN tags_tag t ON t.code = %s::text || tc.category AND t.kind = %s AND t.is_active",
        [PREFERENCE_PREFIX, Tag.Kind.SYSTEM.value],
    )
    current = Sql(
        "mt.tag_id IN (SELECT id FROM tags_tag WHERE kind = %s AND starts_with(code, %s))",
        [Tag.Kind.SYSTEM.value, PREFERENCE_PREFIX],
    )
    added, removed = _run(_diff_statement(desired=desired, current=current, source=Source.SYSTEM, day=business_date))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE tags_top_category")
    return int(added), int(removed)


def preference_tags() -> QuerySet[Tag]:
    return Tag.objects.filter(kind=Tag.Kind.SYSTEM, code__startswith=PREFERENCE_PREFIX)


def tags_rules_job(*, business_date: date, run: JobRun | None) -> tuple[int, int]:
    """The nightly `tags_rules` job: every active rule tag, then the preference tags, made right as of
    `business_date`, each in one set-based statement and its own transaction; the run's cursor records the tags
    done, so a killed run resumes after them. Running it again for the same date changes nothing. Returns
    (members examined, member tags added or removed)."""
    selectors.job_hold("tags_rules", business_date, session=True)  # raises JobOutOfOrder
    try:
        return _tags_rules(business_date, run)
    finally:
        selectors.job_release("tags_rules")


def _tags_rules(business_date: date, run: JobRun | None) -> tuple[int, int]:
    cursor: dict[str, Any] = dict(run.cursor) if run is not None and run.cursor else {}
    done: set[int] = set(cursor.get("tags", []))
    changed = int(cursor.get("changed", 0))
    for tag, rule in _rule_tags():
        if tag.pk in done:
            continue
        with transaction.atomic():
            added, removed = tag_rule_apply(tag, business_date=business_date, rule=rule)
            tag_recount(Tag.objects.filter(pk=tag.pk))
            done.add(tag.pk)
            changed += added + removed
            _cursor_save(run, {"tags": sorted(done), "changed": changed})
    if not cursor.get("preference"):
        with transaction.atomic():
            added, removed = preference_apply(business_date=business_date)
            tag_recount(preference_tags())
            changed += added + removed
            _cursor_save(run, {"tags": sorted(done), "changed": changed, "preference": True})
    # refreshes as of this date or before are no longer later than any run to come
    RuleRefresh.objects.filter(business_date__lte=business_date).delete()
    examined = Member.objects.exclude(status=Member.Status.CANCELLED).count()
    return examined, changed


def _cursor_save(run: JobRun | None, cursor: dict[str, Any]) -> None:
    if run is not None:  # committed with the batch it describes
        run.cursor = cursor
        JobRun.objects.filter(pk=run.pk).update(cursor=cursor)
