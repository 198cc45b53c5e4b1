"""What the tags views share: who may read and who may change tags, and answering htmx."""

from members.permissions import OfficeRequest
from members.roles import Role

# Marketing staff work as managers (as for segments). Cashiers see a member's tags on the member page only;
# auditors read the tags pages.
EDITORS = (Role.OWNER, Role.MANAGER)
READERS = (Role.OWNER, Role.MANAGER, Role.AUDITOR)
PAGE_SIZE = 50
HISTORY_SIZE = 50


def partial_wanted(request: OfficeRequest) -> bool:
    return bool(request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request)
