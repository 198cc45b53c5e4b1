from django.db import migrations

from members.roles import sync_role_groups

# Entries and lot allocations are the record: nothing may change or remove a line once written.
APPEND_ONLY = """
CREATE FUNCTION assets_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER assets_entry_append_only BEFORE UPDATE OR DELETE ON assets_entry
    FOR EACH ROW EXECUTE FUNCTION assets_refuse_change();
CREATE TRIGGER assets_lotallocation_append_only BEFORE UPDATE OR DELETE ON assets_lotallocation
    FOR EACH ROW EXECUTE FUNCTION assets_refuse_change();
"""

# Checked at COMMIT (deferred), when every line of the transaction is in: per asset, the lines sum to zero.
BALANCED = """
CREATE FUNCTION assets_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT asset, sum(amount) AS total INTO bad
    FROM assets_entry WHERE transaction_id = NEW.transaction_id
    GROUP BY asset HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % sums to %', NEW.transaction_id, bad.asset, bad.total
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER assets_entry_balanced AFTER INSERT ON assets_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION assets_check_balanced();
"""

REVERSE = """
DROP TRIGGER IF EXISTS assets_entry_balanced ON assets_entry;
DROP TRIGGER IF EXISTS assets_entry_append_only ON assets_entry;
DROP TRIGGER IF EXISTS assets_lotallocation_append_only ON assets_lotallocation;
DROP FUNCTION IF EXISTS assets_check_balanced();
DROP FUNCTION IF EXISTS assets_refuse_change();
"""

SYSTEM_ACCOUNTS = [
    ("principal", "cash_received"),
    ("principal", "sales"),
    ("principal", "adjustments"),
    ("bonus", "bonus_expense"),
    ("bonus", "sales"),
    ("bonus", "adjustments"),
    ("points", "points_issued"),
    ("points", "points_redeemed"),
    ("points", "points_expired"),
    ("points", "adjustments"),
    ("points_debt", "points_debt"),
    ("growth", "growth_issued"),
    ("growth", "adjustments"),
]


def create_rows(apps, schema_editor):
    Account = apps.get_model("assets", "Account")
    for asset, code in SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(member=None, asset=asset, code=code)
    apps.get_model("assets", "LoyaltySettings").objects.get_or_create(pk=1)
    sync_role_groups(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("assets", "0002_ledgers")]

    operations = [
        migrations.RunSQL(APPEND_ONLY + BALANCED, REVERSE),
        migrations.RunPython(create_rows, migrations.RunPython.noop),
    ]
