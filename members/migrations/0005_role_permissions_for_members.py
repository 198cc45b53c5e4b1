from django.db import migrations

from members.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [("members", "0004_member_register")]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
