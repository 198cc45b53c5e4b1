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
