# One lease (issue 13): ChangeSet takes the abstract Leased model's field names (holder, lease_until).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('bulk', '0005_drop_unused_item_status'),
    ]

    operations = [
        migrations.RenameField(
            model_name='changeset',
            old_name='claimed_by',
            new_name='holder',
        ),
    ]
