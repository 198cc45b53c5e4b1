import json

from django.conf import settings
from django.db import migrations

# (periodic task name, job, minute, hour, description); times are in the merchant's time zone: after the
# night's expiry jobs, before the ledger verification.
SCHEDULES = [
    ("tiers_recalculate", "tiers_recalculate", "0", "1", "Every member placed on the tier ladder for the day that ended."),
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
        ("reports", "0004_ledger_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
