from django.db import migrations

from members.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [("benefits", "0002_catalogue")]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
