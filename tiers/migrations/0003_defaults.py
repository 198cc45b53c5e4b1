from django.db import migrations

from members.roles import sync_role_groups


def create_rows(apps, schema_editor):
    # every member stands somewhere: rank 0, no threshold; merchants rename it and add the rungs above
    apps.get_model("tiers", "Tier").objects.get_or_create(rank=0, defaults={"name": "普通会员", "colour": "#8c8c8c"})
    apps.get_model("tiers", "TierRules").objects.get_or_create(pk=1)
    sync_role_groups(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("tiers", "0002_ladder")]

    operations = [migrations.RunPython(create_rows, migrations.RunPython.noop)]
