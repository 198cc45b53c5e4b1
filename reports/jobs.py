"""The scheduled jobs, by the names that beat schedules, `run_job` and the Jobs page use.

Each entry points at a service `fn(*, business_date: date, run: JobRun) -> (rows_examined, rows_changed)`;
dotted paths keep `reports` free of imports from the apps that own the jobs."""

from django.utils.translation import gettext_lazy as _

JOBS: dict[str, str] = {
    "snapshot_daily": "reports.services.snapshot_build",
    "plans_expire": "members.services.plans_expire",
    "points_expire": "assets.services.points_expire_due",
    "points_expiring": "assets.services.points_expiring_list",
    "coupons_expire": "assets.services.coupon_expire_due",
    "ledgers_verify": "assets.services.ledgers_verify_job",
    "idempotency_purge": "assets.services.idempotency_purge",
    "tiers_recalculate": "tiers.services.tiers_recalculate",
    "rfm": "tags.rfm.rfm_job",
    "lifecycle": "tags.lifecycle.lifecycle_job",
    "tags_rules": "tags.services.tags_rules_job",
}

JOB_LABELS = {
    "snapshot_daily": _("Daily snapshot (member counts for the dashboard)"),
    "plans_expire": _("Paid plans: end lapsed memberships"),
    "points_expire": _("Points: expire the lots that are due"),
    "points_expiring": _("Points: list what expires within 30 days (for reminders)"),
    "coupons_expire": _("Coupons: expire those past their validity"),
    "ledgers_verify": _("Ledgers: verify every invariant"),
    "idempotency_purge": _("Ledgers: forget request keys older than 30 days"),
    "tiers_recalculate": _("Tiers: place every member by the rules (upgrades, downgrades, gift packs)"),
    "rfm": _("RFM: score every member who bought in the window, and name their segment"),
    "lifecycle": _("Lifecycle: every member's stage (new, active, silent, churned)"),
    "tags_rules": _("Tags: rule tags and preference tags of every member"),
}
