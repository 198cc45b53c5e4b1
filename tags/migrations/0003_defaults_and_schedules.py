import json

from django.conf import settings
from django.db import migrations

# the groups the product ships, by dimension (their names are empty: they read as the dimension)
GROUPS = ["attributes", "lifecycle", "rfm", "value", "preference", "channel", "custom"]
STAGES = ["new", "active", "silent", "churned"]
# name, R from, R to, F from, F to (tags.models.DEFAULT_SEGMENTS; first match wins)
SEGMENTS = [
    ("Champions", 5, 5, 4, 5),
    ("Loyal", 3, 4, 4, 5),
    ("Potential loyalist", 4, 5, 2, 3),
    ("New", 5, 5, 1, 1),
    ("Promising", 4, 4, 1, 1),
    ("Need attention", 3, 3, 3, 3),
    ("About to sleep", 3, 3, 1, 2),
    ("Can't lose them", 1, 2, 5, 5),
    ("At risk", 1, 2, 3, 4),
    ("Lost", 1, 1, 1, 1),
    ("Hibernating", 1, 2, 1, 2),
]
STAGE_COLOURS = {"new": "#2fb344", "active": "#206bc4", "silent": "#f59f00", "churned": "#868e96"}
# (periodic task name, job, minute, hour, description), in the merchant's time zone: after the tier recalculation
SCHEDULES = [
    ("rfm", "rfm", "20", "1", "RFM scores and segments of every member who bought in the window."),
    ("lifecycle", "lifecycle", "30", "1", "Every member's lifecycle stage (new, active, silent, churned)."),
    ("tags_rules", "tags_rules", "40", "1", "Rule tags and preference tags of every member."),
]


def create(apps, schema_editor):
    TagGroup = apps.get_model("tags", "TagGroup")
    Tag = apps.get_model("tags", "Tag")
    RfmSegment = apps.get_model("tags", "RfmSegment")
    LifecycleSettings = apps.get_model("tags", "LifecycleSettings")
    groups = {}
    for position, dimension in enumerate(GROUPS):
        groups[dimension], _ = TagGroup.objects.get_or_create(
            dimension=dimension, name="", defaults={"position": position * 10}
        )
    for stage in STAGES:
        Tag.objects.get_or_create(
            code=f"lifecycle:{stage}",
            defaults={"group": groups["lifecycle"], "kind": "system", "colour": STAGE_COLOURS[stage]},
        )
    for position, (name, r_min, r_max, f_min, f_max) in enumerate(SEGMENTS):
        RfmSegment.objects.get_or_create(
            name=name,
            defaults={"r_min": r_min, "r_max": r_max, "f_min": f_min, "f_max": f_max, "position": position * 10},
        )
        Tag.objects.get_or_create(
            code=f"rfm:{name}", defaults={"group": groups["rfm"], "kind": "system", "colour": "#7048e8"}
        )
    LifecycleSettings.objects.get_or_create(pk=1)

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


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()
    apps.get_model("tags", "Tag").objects.filter(kind="system").delete()
    apps.get_model("tags", "RfmSegment").objects.all().delete()
    apps.get_model("tags", "TagGroup").objects.filter(name="").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tags", "0002_tags_lifecycle_rfm_segments"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
