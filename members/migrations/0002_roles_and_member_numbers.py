from django.db import migrations

from members.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("reports", "0001_initial"),
    ]

    operations = [
        # member numbers come from a sequence so two registrations never race for the same number
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS members_member_no_seq START 1",
            "DROP SEQUENCE IF EXISTS members_member_no_seq",
        ),
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
