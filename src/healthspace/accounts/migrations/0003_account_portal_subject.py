import uuid

from django.db import migrations, models


def give_each_account_its_own_subject(apps, schema_editor):
    # AddField with a callable default gives every existing row the same value.
    Account = apps.get_model("accounts", "Account")
    for account in Account.objects.only("pk").iterator():
        Account.objects.filter(pk=account.pk).update(portal_subject=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_account_notify_staff_views")]

    operations = [
        migrations.AddField(
            model_name="account",
            name="portal_subject",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_each_account_its_own_subject, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="account",
            name="portal_subject",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
