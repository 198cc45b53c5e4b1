from celery import shared_task
from django.db import OperationalError

from assets import batch, imports
from assets.models import PurchaseImport


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def coupon_issue_batch_task(*, batch_id: int, **kwargs: object) -> dict[str, int]:
    """Issue a template to a filtered member list; resumable (the batch row keeps its cursor)."""
    done = batch.coupon_issue_batch_run(batch_id=batch_id)
    return {"issued": done.issued, "skipped": done.skipped}


@shared_task(acks_late=True)
def purchase_import_check_task(*, import_id: int, **kwargs: object) -> dict[str, int]:
    """The dry run of a purchase file too large to check while the browser waits."""
    purchase_import = PurchaseImport.objects.get(pk=import_id)
    if purchase_import.status != PurchaseImport.Status.CHECKING:
        return {"rows": purchase_import.total_rows}  # a redelivered message: already checked
    try:
        purchase_import = imports.import_check(purchase_import=purchase_import)
    except Exception as exc:
        imports.import_fail(purchase_import=purchase_import, error=exc)
        raise
    return {"rows": purchase_import.total_rows, "errors": purchase_import.invalid}


@shared_task(acks_late=True)
def purchase_import_apply_task(*, import_id: int, **kwargs: object) -> dict[str, int]:
    """Run a confirmed purchase import; running it again (a retry) goes on from the last committed batch."""
    purchase_import = PurchaseImport.objects.get(pk=import_id)
    try:
        purchase_import = imports.import_apply(purchase_import=purchase_import)
    except Exception as exc:
        imports.import_fail(purchase_import=purchase_import, error=exc)
        raise
    return {"imported": purchase_import.imported, "skipped": purchase_import.skipped, "failed": purchase_import.failed}
