"""Lifecycle: every member's stage as of a business date D, by the thresholds of LifecycleSettings (defaults
in brackets), counting paid purchases up to D (money paid, not refunded in full by D):

- new: registered within `new_days` (30) of D (D - the registration's business date <= 30) with at most
  `new_max_purchases` (1) purchases;
- active: otherwise, a purchase within the last `active_days` (90) days (D - the last purchase < 90);
- churned: the last purchase more than `churned_days` (180) days before D, or never bought and registered
  more than `churned_days` days before D;
- silent: everyone else: the last purchase 90 to 180 days before D, or never bought and registered 31 to 180
  days before D.

Only purchases of the last max(churned_days, new_days) + 1 days are read: an older last purchase churns a member
as surely as none does (both are "more than churned_days" for anyone registered that long ago), and a member
registered within new_days made every purchase within it. A purchase history imported as older than the
member's registration is the one case this reads differently (such a member is silent, not churned).

Members registered after D are not staged yet; cancelled members lose their stage. The `lifecycle` job writes
MemberLifecycle only for members whose stage changed (with the date it began) and adds a LifecycleChange row
for each change, a member's first stage included (from empty), which campaigns can trigger on. Running it
again for the same date changes nothing."""

from datetime import date, timedelta
from typing import Any

import pghistory
from django.conf import settings
from django.contrib.auth.models import User

from members.models import Member
from reports.models import JobRun
from reports.services import business_day_bounds
from tags import selectors
from tags.models import LifecycleSettings, Stage
from tags.paid import PAID_PURCHASES_SQL, staged_pass

STAGE_SQL = f"""
SELECT m.id AS member_id,
       CASE
           WHEN %(day)s::date - (m.registered_at AT TIME ZONE %(tz)s)::date <= %(new_days)s
                AND COALESCE(p.purchases, 0) <= %(new_max)s THEN 'new'
           WHEN p.last_date IS NOT NULL AND %(day)s::date - p.last_date < %(active_days)s THEN 'active'
           WHEN p.last_date IS NOT NULL AND %(day)s::date - p.last_date > %(churned_days)s THEN 'churned'
           WHEN p.last_date IS NULL
                AND %(day)s::date - (m.registered_at AT TIME ZONE %(tz)s)::date > %(churned_days)s THEN 'churned'
           ELSE 'silent'
       END AS stage
FROM members_member m
LEFT JOIN (
    SELECT member_id, max(business_date) AS last_date, count(*) AS purchases
    FROM ({PAID_PURCHASES_SQL}) paid
    GROUP BY member_id
) p ON p.member_id = m.id
WHERE m.registered_at < %(cutoff)s AND m.status <> %(cancelled)s
"""

APPLY_SQL = """
WITH diff AS (
    SELECT s.member_id AS new_id, c.member_id AS old_id, s.stage, c.stage AS old_stage
    FROM tags_lifecycle_stage s
    FULL JOIN tags_memberlifecycle c ON c.member_id = s.member_id
    WHERE s.member_id IS NULL OR c.member_id IS NULL OR s.stage <> c.stage
), history AS (
    INSERT INTO tags_lifecyclechange (member_id, business_date, from_stage, to_stage)
    SELECT new_id, %(day)s, COALESCE(old_stage, ''), stage FROM diff WHERE new_id IS NOT NULL
    ON CONFLICT (member_id, business_date) DO UPDATE SET to_stage = EXCLUDED.to_stage
    RETURNING 1
), removed AS (
    DELETE FROM tags_memberlifecycle c USING diff d WHERE d.new_id IS NULL AND c.member_id = d.old_id RETURNING 1
), changed AS (
    UPDATE tags_memberlifecycle c SET stage = d.stage, since = %(day)s
    FROM diff d WHERE d.new_id IS NOT NULL AND d.old_id IS NOT NULL AND c.member_id = d.old_id
    RETURNING 1
), added AS (
    INSERT INTO tags_memberlifecycle (member_id, stage, since)
    SELECT new_id, stage, %(day)s FROM diff WHERE old_id IS NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM tags_lifecycle_stage), (SELECT count(*) FROM history), (SELECT count(*) FROM removed),
       (SELECT count(*) FROM changed), (SELECT count(*) FROM added)
"""


class LifecycleOutOfOrder(ValueError):
    """Stages as of a later date are current already."""


def lifecycle_settings() -> LifecycleSettings:
    return LifecycleSettings.objects.get_or_create(pk=1)[0]


def lifecycle_settings_save(*, settings_obj: LifecycleSettings, by: User | None) -> LifecycleSettings:
    """Save the thresholds (one row, audited by pghistory with the staff member)."""
    settings_obj.pk = 1
    with pghistory.context(user=by.pk if by else None, action="lifecycle_settings_save"):
        settings_obj.save()
    return settings_obj


def stage_params(day: date, rules: LifecycleSettings | None = None) -> dict[str, Any]:
    rules = rules or lifecycle_settings()
    return {
        "day": day,
        "cutoff": business_day_bounds(day)[1],
        # only purchases this recent can decide a stage: an older last purchase churns a member as surely as
        # none does, and a new member's purchases are all in it (registered within new_days <= this span)
        "start": day - timedelta(days=max(rules.churned_days, rules.new_days) + 1),
        "tz": settings.TIME_ZONE,
        "new_days": rules.new_days,
        "new_max": rules.new_max_purchases,
        "active_days": rules.active_days,
        "churned_days": rules.churned_days,
        "cancelled": Member.Status.CANCELLED,
    }


def lifecycle_job(*, business_date: date, run: JobRun | None = None) -> tuple[int, int]:
    """Stage every member as of `business_date`, set-based: one statement stages them in a temporary table,
    one writes the changes and their history. Returns (members staged, rows written).
    Raises LifecycleOutOfOrder for a date before the latest run's."""
    try:
        return staged_pass(
            "lifecycle",
            business_date,
            stage="tags_lifecycle_stage",
            stage_sql=STAGE_SQL,
            params=stage_params(business_date),
            apply_sql=APPLY_SQL,
            table="tags_memberlifecycle",
            column="stage",
        )
    except selectors.JobOutOfOrder as exc:
        raise LifecycleOutOfOrder(str(exc)) from None


STAGES = [stage.value for stage in Stage]
