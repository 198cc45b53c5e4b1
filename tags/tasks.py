"""Celery tasks of tags: rule tags re-evaluated for one member after an event, or for every member after a rule
changed; staff's bulk tagging of a filtered member list or an imported file, whose progress and outcome are kept
in Celery's result backend (django-celery-results) for the status page to read."""

from datetime import date
from typing import Any

from celery import Task, shared_task, states
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.utils import timezone

from tags import segments, services
from tags.models import Segment, Tag


def _day(business_date: str | None) -> date:
    return date.fromisoformat(business_date) if business_date else timezone.localdate()


@shared_task(acks_late=True)
def rule_tags_refresh_task(*, member_id: int, business_date: str | None = None, **kwargs: object) -> dict[str, int]:
    """After a purchase, a registration or an edit: the member's rule tags as of today (the business date is
    read here, when the task runs)."""
    added, removed = services.rule_tags_refresh_member(member_id, _day(business_date))
    return {"added": added, "removed": removed}


@shared_task(acks_late=True)
def tag_rule_evaluate_task(*, tag_id: int, business_date: str | None = None, **kwargs: object) -> dict[str, int]:
    """A rule tag just created, changed or reactivated: evaluated over every member as of today."""
    tag = Tag.objects.filter(pk=tag_id).first()
    if tag is None:
        return {"added": 0, "removed": 0}
    added, removed = services.tag_evaluate(tag=tag, business_date=_day(business_date))
    return {"added": added, "removed": removed}


@shared_task(acks_late=True)
def segment_count_task(*, segment_id: int, **kwargs: object) -> int | None:
    """A saved segment's exact count, when it takes too long for the page that asked for it."""
    segment = Segment.objects.filter(pk=segment_id).first()
    return None if segment is None else segments.segment_refresh_count(segment)


def _finish(task: Task, outcome: dict[str, Any]) -> dict[str, Any]:
    # a worker stores the return value itself; a task run in-process (eager, as in tests or without a worker)
    # does not, and the status page would wait for ever
    if task.request.is_eager:
        task.backend.store_result(task.request.id, outcome, states.SUCCESS, request=task.request)
    return outcome


def _reporter(task: Task, base: dict[str, Any]) -> services.Progress:
    def report(done: int, total: int, changed: int) -> None:
        task.update_state(state="PROGRESS", meta={**base, "done": done, "total": total, "changed": changed})

    return report


@shared_task(bind=True, acks_late=True)
def tag_members_filter_task(
    self: Task, *, tag_id: int, action: str, query: str, by_id: int | None = None, **kwargs: object
) -> dict[str, Any]:
    """Tag or untag every member of a filtered member list (a retry goes through again and changes only what is
    left)."""
    tag = Tag.objects.get(pk=tag_id)
    by = User.objects.filter(pk=by_id).first() if by_id else None
    base = {"kind": "filter", "tag": tag_id, "action": action, "query": query}
    done, changed = services.members_tag_by_filter(
        tag=tag, query=query, action=action, by=by, progress=_reporter(self, base)
    )
    return _finish(self, {**base, "done": done, "total": done, "changed": changed})


@shared_task(bind=True, acks_late=True)
def tag_members_import_task(
    self: Task, *, tag_id: int, action: str, path: str, file_name: str, by_id: int | None = None, **kwargs: object
) -> dict[str, Any]:
    """Tag or untag the members an uploaded file names; the file is deleted once done."""
    tag = Tag.objects.get(pk=tag_id)
    by = User.objects.filter(pk=by_id).first() if by_id else None
    with default_storage.open(path, "rb") as uploaded:
        headers, rows = services.tag_import_read(uploaded, name=file_name)
    base = {"kind": "import", "tag": tag_id, "action": action, "file_name": file_name, "headers": headers}
    outcome = services.members_tag_import(
        tag=tag,
        headers=headers,
        rows=rows,
        action=action,
        by=by,
        file_name=file_name,
        progress=_reporter(self, base),
    )
    default_storage.delete(path)
    return _finish(
        self,
        {
            **base,
            "done": outcome.rows,
            "total": outcome.rows,
            "changed": outcome.changed,
            "matched": outcome.matched,
            "failed": outcome.failed,
            "errors": outcome.errors,
        },
    )
