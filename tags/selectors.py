"""Reads of tags: which members a tag holds (for every kind of tag, as a condition on members), a member's
tags, and the dates of the last RFM and lifecycle runs."""

from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet

from members.models import Member
from reports.models import JobRun
from tags.models import MemberTag, Tag, TagGroup


def tag_members_q(tag: Tag) -> Q:
    """A condition on Member that holds exactly for the members holding `tag`. Lifecycle and RFM tags read
    their own tables (MemberLifecycle, RfmScore); every other tag reads MemberTag."""
    kind, _sep, value = tag.code.partition(":")
    if tag.kind == Tag.Kind.SYSTEM and kind == "lifecycle":
        return Q(lifecycle__stage=value)
    if tag.kind == Tag.Kind.SYSTEM and kind == "rfm":
        return Q(rfm__segment=value)
    return Q(Exists(MemberTag.objects.filter(member=OuterRef("pk"), tag=tag)))


def tag_members(tag: Tag) -> QuerySet[Member]:
    return Member.objects.filter(tag_members_q(tag))


def tags_by_group() -> list[tuple[TagGroup, list[Tag]]]:
    """Every group with its tags, in the groups' order and by name (system tags by their code)."""
    tags: dict[int, list[Tag]] = {}
    for tag in Tag.objects.order_by("kind", "name", "code", "pk"):
        tags.setdefault(tag.group_id, []).append(tag)
    return [(group, tags.get(group.pk, [])) for group in TagGroup.objects.all()]


def last_run_date(job: str) -> date | None:
    """The business date of the job's latest successful run: what its current rows are as of."""
    return (
        JobRun.objects.filter(job=job, status=JobRun.Status.SUCCEEDED)
        .order_by("-business_date")
        .values_list("business_date", flat=True)
        .first()
    )


class JobOutOfOrder(ValueError):
    """A run of the same job for a later date has started or succeeded: its rows are the current ones."""


def job_hold(job: str, business_date: date, *, session: bool = False) -> None:
    """Let one run of a tags job (rfm, lifecycle, tags_rules) proceed at a time, whatever its date, and none for
    a date before that of a run started or finished since (a failed one aside). With `session` the lock is held
    until job_release (a job of several transactions); otherwise until the caller's transaction ends.
    Raises JobOutOfOrder."""
    from django.db import connection
    from django.utils.translation import gettext as _

    with connection.cursor() as cursor:
        if session:
            cursor.execute("SELECT pg_try_advisory_lock(hashtext('tags-job'), hashtext(%s))", [job])
            if not cursor.fetchone()[0]:
                raise JobOutOfOrder(_("Another run of this job is in progress."))
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tags-job'), hashtext(%s))", [job])
    later = JobRun.objects.filter(job=job, business_date__gt=business_date).exclude(status=JobRun.Status.FAILED)
    if later.exists():
        if session:
            job_release(job)
        raise JobOutOfOrder(
            _("A run of this job for a later date has started or finished; its results are the current ones.")
        )


def job_release(job: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(hashtext('tags-job'), hashtext(%s))", [job])
