# One lease (issue 13): Lease, SyncSlice and ChangeSet share the abstract Leased model (holder, lease_until).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog_sync', '0008_resource_changes'),
    ]

    operations = [
        migrations.RenameField(
            model_name='lease',
            old_name='expires_at',
            new_name='lease_until',
        ),
        migrations.AlterField(
            model_name='lease',
            name='lease_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
