from celery import shared_task

from members import importing
from members.models import MemberImport


@shared_task(acks_late=True)
def member_import_check_task(*, import_id: int, **kwargs: object) -> dict[str, int]:
    """The dry run of a file too large to check while the browser waits."""
    member_import = MemberImport.objects.get(pk=import_id)
    if member_import.status != MemberImport.Status.CHECKING:
        return {"rows": member_import.total_rows}  # a redelivered message: already checked
    try:
        member_import = importing.import_check(member_import=member_import)
    except Exception as exc:
        importing.import_fail(member_import=member_import, error=exc)
        raise
    return {"rows": member_import.total_rows, "errors": member_import.invalid}


@shared_task(acks_late=True)
def member_import_apply_task(*, import_id: int, **kwargs: object) -> dict[str, int]:
    """Run a confirmed import; running it again (a retry) goes on from the last committed batch."""
    member_import = MemberImport.objects.get(pk=import_id)
    try:
        member_import = importing.import_apply(member_import=member_import)
    except Exception as exc:
        importing.import_fail(member_import=member_import, error=exc)
        raise
    return {"created": member_import.created, "updated": member_import.updated, "failed": member_import.failed}
