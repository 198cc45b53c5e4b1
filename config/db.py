"""Database helpers shared by the apps."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import OperationalError, connection, transaction

T = TypeVar("T")
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cut short by statement_timeout


class TooSlow(Exception):
    """The work did not finish within its time limit; its transaction (or savepoint) was rolled back."""


@contextmanager
def time_limit(milliseconds: int) -> Iterator[None]:
    """Run the block in a transaction (a savepoint inside another) whose statements may each take at most
    `milliseconds`; one cut short raises TooSlow, with the block's writes rolled back. For work a page offers
    at once (an exact count) that would hold a request too long on a large register."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout')")
                before = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(milliseconds)}ms"])
            yield
            # a released savepoint keeps a local setting to the end of the caller's transaction: put it back
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [before])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == QUERY_CANCELED:
            raise TooSlow from exc
        raise


def within(milliseconds: int, work: Callable[[], T]) -> T:
    """work() under time_limit(milliseconds): its result, or TooSlow."""
    with time_limit(milliseconds):
        return work()
