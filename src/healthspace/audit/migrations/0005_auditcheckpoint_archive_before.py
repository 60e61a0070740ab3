from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_partition_by_month")]

    operations = [
        migrations.AddField(
            model_name="auditcheckpoint",
            name="archive_before",
            field=models.DateField(blank=True, null=True),
        ),
    ]
