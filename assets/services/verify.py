"""`verify_ledgers`: every ledger invariant, checked in one snapshot."""

from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone


@dataclass
class Violation:
    check: str
    count: int
    examples: list[str]


@dataclass
class VerifyReport:
    checked_at: datetime
    accounts: int
    transactions: int
    lots: int
    coupons: int
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.violations

    def text(self) -> str:
        head = (
            f"Ledgers verified at {self.checked_at:%Y-%m-%d %H:%M:%S}: {self.accounts} member accounts, "
            f"{self.transactions} transactions, {self.lots} points lots, {self.coupons} coupons."
        )
        if self.ok:
            return head + "\nAll invariants hold."
        lines = [head, f"{len(self.violations)} invariant(s) broken:"]
        for v in self.violations:
            lines.append(f"- {v.check}: {v.count} row(s), e.g. {'; '.join(v.examples)}")
        return "\n".join(lines)


# each check: (what must hold, a query returning one text line per violating row)
CHECKS: tuple[tuple[str, str], ...] = (
    (
        "member account balance = sum of its entries = last balance_after >= 0, sequence without gaps",
        """
        SELECT format('account %%s (member %%s, %%s): balance %%s, entries sum %%s, last balance_after %%s,
                       seq %%s, entries %%s', a.id, a.member_id, a.asset, a.balance, coalesce(e.total, 0),
                       coalesce(l.balance_after, 0), a.seq, coalesce(e.n, 0))
        FROM assets_account a
        LEFT JOIN (SELECT account_id, sum(amount) AS total, count(*) AS n, max(seq) AS top
                   FROM assets_entry GROUP BY account_id) e ON e.account_id = a.id
        LEFT JOIN assets_entry l ON l.account_id = a.id AND l.seq = a.seq
        WHERE a.member_id IS NOT NULL AND (
            a.balance < 0 OR a.balance <> coalesce(e.total, 0) OR a.balance <> coalesce(l.balance_after, 0)
            OR a.seq <> coalesce(e.n, 0) OR a.seq <> coalesce(e.top, 0))
        """,
    ),
    (
        "every entry's asset is its account's asset",
        """
        SELECT format('entry %%s: asset %%s on account %%s of %%s', e.id, e.asset, a.id, a.asset)
        FROM assets_entry e JOIN assets_account a ON a.id = e.account_id WHERE e.asset <> a.asset
        """,
    ),
    (
        "every balance_after follows from the one before it (the running balance of each member account)",
        """
        SELECT format('entry %%s (account %%s, seq %%s): balance_after %%s, running sum %%s', x.id, x.account_id,
                      x.seq, x.balance_after, x.running)
        FROM (SELECT e.id, e.account_id, e.seq, e.balance_after,
                     sum(e.amount) OVER (PARTITION BY e.account_id ORDER BY e.seq) AS running
              FROM assets_entry e WHERE e.seq IS NOT NULL) x
        WHERE x.balance_after <> x.running
        """,
    ),
    (
        "every member line is on its transaction's member",
        """
        SELECT format('entry %%s: account of member %%s in transaction %%s of member %%s', e.id, a.member_id,
                      t.id, t.member_id)
        FROM assets_entry e JOIN assets_account a ON a.id = e.account_id
        JOIN assets_ledgertransaction t ON t.id = e.transaction_id
        WHERE a.member_id IS NOT NULL AND a.member_id IS DISTINCT FROM t.member_id
        """,
    ),
    (
        "a lot, the earning that made it and the transactions taking from it are one member's",
        """
        SELECT format('lot %%s of member %%s: earned by transaction %%s of member %%s', l.id, l.member_id, t.id,
                      t.member_id)
        FROM assets_pointlot l JOIN assets_ledgertransaction t ON t.id = l.earned_by_id
        WHERE t.member_id IS DISTINCT FROM l.member_id
        UNION ALL
        SELECT format('allocation %%s on lot %%s of member %%s: transaction %%s of member %%s', x.id, l.id,
                      l.member_id, t.id, t.member_id)
        FROM assets_lotallocation x JOIN assets_pointlot l ON l.id = x.lot_id
        JOIN assets_ledgertransaction t ON t.id = x.transaction_id
        WHERE t.member_id IS DISTINCT FROM l.member_id
        """,
    ),
    (
        "every coupon event is its coupon member's",
        """
        SELECT format('transaction %%s (%%s) of member %%s on coupon %%s of member %%s', t.id, t.kind, t.member_id,
                      c.id, c.member_id)
        FROM assets_ledgertransaction t JOIN assets_coupon c ON c.id = t.coupon_id
        WHERE t.member_id IS DISTINCT FROM c.member_id
        """,
    ),
    (
        "every transaction sums to zero per asset",
        """
        SELECT format('transaction %%s: %%s sums to %%s', transaction_id, asset, sum(amount))
        FROM assets_entry GROUP BY transaction_id, asset HAVING sum(amount) <> 0
        """,
    ),
    (
        "points balance = sum of the member's lot remainders",
        """
        SELECT format('member %%s: points balance %%s, lots hold %%s', a.member_id, a.balance, coalesce(l.total, 0))
        FROM assets_account a
        LEFT JOIN (SELECT member_id, sum(remaining) AS total FROM assets_pointlot GROUP BY member_id) l
               ON l.member_id = a.member_id
        WHERE a.asset = 'points' AND a.member_id IS NOT NULL AND a.balance <> coalesce(l.total, 0)
        """,
    ),
    (
        "every lot's remaining = original - its allocations, and is expired at most once",
        """
        SELECT format('lot %%s: original %%s, allocated %%s, remaining %%s, expiries %%s', l.id, l.original,
                      coalesce(x.total, 0), l.remaining, coalesce(x.expiries, 0))
        FROM assets_pointlot l
        LEFT JOIN (SELECT lot_id, sum(amount) AS total, count(*) FILTER (WHERE kind = 'expire') AS expiries
                   FROM assets_lotallocation GROUP BY lot_id) x ON x.lot_id = l.id
        WHERE l.remaining <> l.original - coalesce(x.total, 0) OR coalesce(x.expiries, 0) > 1
        """,
    ),
    (
        "no lot past its expiry keeps points after its expiry ran, and none is partly taken beyond original",
        """
        SELECT format('lot %%s: remaining %%s after its expiry allocation', l.id, l.remaining)
        FROM assets_pointlot l JOIN assets_lotallocation x ON x.lot_id = l.id AND x.kind = 'expire'
        WHERE l.remaining <> 0 AND NOT EXISTS (
            SELECT 1 FROM assets_lotallocation r WHERE r.lot_id = l.id AND r.kind = 'restore' AND r.id > x.id)
        """,
    ),
    (
        "each coupon's status agrees with its last ledger event",
        """
        SELECT format('coupon %%s: status %%s, last event %%s', c.id, c.status, coalesce(t.kind, 'none'))
        FROM assets_coupon c
        LEFT JOIN LATERAL (SELECT kind, details FROM assets_ledgertransaction
                           WHERE coupon_id = c.id ORDER BY id DESC LIMIT 1) t ON true
        WHERE c.status <> CASE t.kind
            WHEN 'coupon_issue' THEN 'available' WHEN 'coupon_redeem' THEN 'used' WHEN 'coupon_void' THEN 'void'
            WHEN 'coupon_expire' THEN 'expired'
            WHEN 'coupon_restore' THEN CASE WHEN t.details ? 'expired' THEN 'expired' ELSE 'available' END
            ELSE '?' END
        """,
    ),
    (
        "a used coupon is used by its redemption, of its own member",
        """
        SELECT format('coupon %%s: redeemed by transaction %%s of kind %%s', c.id, c.redeemed_by_id, t.kind)
        FROM assets_coupon c JOIN assets_ledgertransaction t ON t.id = c.redeemed_by_id
        WHERE t.kind <> 'coupon_redeem' OR t.coupon_id <> c.id OR t.member_id <> c.member_id
        """,
    ),
    (
        "each template's issued count = its coupons, within stock",
        """
        SELECT format('template %%s: issued %%s, coupons %%s, stock %%s', t.id, t.issued, coalesce(c.n, 0), t.stock)
        FROM assets_coupontemplate t
        LEFT JOIN (SELECT template_id, count(*) AS n FROM assets_coupon GROUP BY template_id) c
               ON c.template_id = t.id
        WHERE t.issued <> coalesce(c.n, 0) OR (t.stock IS NOT NULL AND t.issued > t.stock)
        """,
    ),
    (
        "reversals never exceed what they reverse",
        """
        SELECT format('transaction %%s: amount %%s, reversals %%s, recorded %%s', o.id, o.amount, r.total,
                      o.reversed_amount)
        FROM assets_ledgertransaction o
        JOIN (SELECT reverses_id, sum(amount) AS total FROM assets_ledgertransaction
              WHERE reverses_id IS NOT NULL AND kind NOT IN ('top_up_refund') GROUP BY reverses_id) r
          ON r.reverses_id = o.id
        WHERE r.total > o.amount OR r.total <> o.reversed_amount
        """,
    ),
)


def ledgers_verify(*, examples: int = 5) -> VerifyReport:
    """Check every ledger invariant in one REPEATABLE READ snapshot (so concurrent writes cannot make a
    consistent ledger look broken). Returns the report; it lists each broken invariant with examples."""
    violations = []
    in_outer = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if not in_outer:  # inside a caller's transaction, its snapshot is the one there is
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for check, sql in CHECKS:
            cursor.execute(f"SELECT count(*) OVER (), v.* FROM ({sql}) AS v(line) LIMIT %s", [examples])
            rows = cursor.fetchall()
            if rows:
                violations.append(Violation(check=check, count=rows[0][0], examples=[r[1] for r in rows]))
        cursor.execute(
            "SELECT (SELECT count(*) FROM assets_account WHERE member_id IS NOT NULL),"
            " (SELECT count(*) FROM assets_ledgertransaction), (SELECT count(*) FROM assets_pointlot),"
            " (SELECT count(*) FROM assets_coupon)"
        )
        accounts, transactions, lots, coupons = cursor.fetchone()
    return VerifyReport(
        checked_at=timezone.localtime(),
        accounts=accounts,
        transactions=transactions,
        lots=lots,
        coupons=coupons,
        violations=violations,
    )


class LedgersBroken(Exception):
    """The nightly verification found broken invariants; the job run fails with the report."""


def ledgers_verify_job(*, business_date: date, run: object = None) -> tuple[int, int]:
    report = ledgers_verify()
    if not report.ok:
        raise LedgersBroken(report.text())
    return report.accounts + report.transactions + report.lots + report.coupons, 0
