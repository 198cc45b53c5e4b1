from django.db import migrations


class Migration(migrations.Migration):
    """Order numbers come from a sequence: unique without retries, however many purchases a day brings."""

    dependencies = [("assets", "0007_purchase_import")]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE assets_order_no_seq", reverse_sql="DROP SEQUENCE IF EXISTS assets_order_no_seq"
        ),
    ]
