from celery import shared_task
from django.db import OperationalError

from assets import batch


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def coupon_issue_batch_task(*, batch_id: int, **kwargs: object) -> dict[str, int]:
    """Issue a template to a filtered member list; resumable (the batch row keeps its cursor)."""
    done = batch.coupon_issue_batch_run(batch_id=batch_id)
    return {"issued": done.issued, "skipped": done.skipped}
