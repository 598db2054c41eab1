from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('optimizations', '0002_weekly_audit_schedule'),
    ]

    operations = [
        migrations.AlterField(
            model_name='optimizationlog',
            name='status',
            field=models.CharField(choices=[('proposed', 'Proposed'), ('approved', 'Approved'), ('applying', 'Applying'), ('applied', 'Applied'), ('rejected', 'Rejected'), ('superseded', 'Superseded')], default='proposed', max_length=16),
        ),
    ]
