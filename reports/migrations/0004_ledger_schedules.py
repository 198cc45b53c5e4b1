import json

from django.conf import settings
from django.db import migrations

# (periodic task name, job, minute, hour, description); times are in the merchant's time zone. Expiry runs
# first, the reminder list after it, and the verification last, over the night's finished work.
SCHEDULES = [
    ("points_expire", "points_expire", "5", "0", "Points lots that expired at midnight lose their points."),
    ("coupons_expire", "coupons_expire", "5", "0", "Coupons whose validity ended at midnight expire."),
    ("points_expiring", "points_expiring", "20", "0", "Points expiring within 30 days, per member, for reminders."),
    ("ledgers_verify", "ledgers_verify", "0", "3", "Every ledger invariant is checked; a failure fails the run."),
    ("idempotency_purge", "idempotency_purge", "30", "3", "Request keys older than 30 days are forgotten."),
]


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, job, minute, hour, description in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": "reports.tasks.run_job_task",
                "crontab": crontab,
                "kwargs": json.dumps({"job": job}),
                "description": description,
                "enabled": True,
            },
        )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_plans_expire_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
