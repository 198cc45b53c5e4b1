"""Issuing a coupon to a filtered member list: a resumable job over the members, in keyset batches."""

import contextlib

from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from assets import services
from assets.models import Coupon, CouponIssueBatch, LedgerTransaction
from members import filters
from members.models import Member, Store

BATCH_SIZE = 500


def batch_members(filter_params: dict[str, object]) -> QuerySet[Member]:
    """The members a batch targets: the member list's filters, applied as the list applies them."""
    query = QueryDict(mutable=True)
    for name, value in filter_params.items():
        query.setlist(name, [str(v) for v in value] if isinstance(value, list) else [str(value)])
    form = filters.MemberFilterForm(query, stores=Store.objects.all())
    if not form.is_valid():
        raise ValueError(f"invalid member filters: {form.errors.as_text()}")
    return filters.member_filter(Member.objects.all(), form)


def coupon_issue_batch_run(*, batch_id: int) -> CouponIssueBatch:
    """Issue the batch's template to each targeted member once (a key per member); the cursor is saved after
    every BATCH_SIZE members, so a retried task carries on where it stopped and issues nothing twice."""
    batch = CouponIssueBatch.objects.select_related("template").get(pk=batch_id)
    if batch.status == CouponIssueBatch.Status.DONE:
        return batch
    CouponIssueBatch.objects.filter(pk=batch.pk).update(status=CouponIssueBatch.Status.RUNNING)
    try:
        return _run(batch_id, batch_members(batch.filters).filter(status=Member.Status.ACTIVE).order_by("pk"))
    except Exception as exc:
        CouponIssueBatch.objects.filter(pk=batch_id).update(status=CouponIssueBatch.Status.FAILED, message=str(exc))
        raise


def _run(batch_id: int, members: QuerySet[Member]) -> CouponIssueBatch:
    batch = CouponIssueBatch.objects.select_related("template").get(pk=batch_id)
    actor = f"batch:{batch.pk}"
    while True:
        chunk = list(members.filter(pk__gt=batch.cursor)[:BATCH_SIZE])
        if not chunk:
            batch.status, batch.finished_at = CouponIssueBatch.Status.DONE, timezone.now()
            batch.save(update_fields=["status", "finished_at"])
            return batch
        for member in chunk:
            # each issue is its own short transaction (retried on deadlock by the service), so the batch never
            # holds a member's accounts or the template's stock row for longer than one issue
            with contextlib.suppress(services.LedgerError):  # limit reached, out of stock, frozen: skipped
                services.coupon_issue(
                    template=batch.template,
                    member=member,
                    channel=Coupon.Channel.MANUAL,
                    idempotency_key=f"{actor}:{member.pk}",
                    actor=actor,
                )
        # progress from what is recorded, so a task retried in the middle of a chunk counts nothing twice
        batch.cursor = chunk[-1].pk
        batch.issued = LedgerTransaction.objects.filter(actor=actor, kind=LedgerTransaction.Kind.COUPON_ISSUE).count()
        batch.skipped = members.filter(pk__lte=batch.cursor).count() - batch.issued
        batch.save(update_fields=["cursor", "issued", "skipped"])
