from django.db import migrations, models

import portal.clock

LANE_FIELD_BY_KIND = {"NOTIFICATION": "channel_id"}


def lanes_of_stored_messages(apps, schema_editor):
    OutboundMessage = apps.get_model("portal", "OutboundMessage")
    OutboxLane = apps.get_model("portal", "OutboxLane")
    OutboundMessage.objects.update(lane=models.F("kind"))
    for kind, field in LANE_FIELD_BY_KIND.items():
        for message in OutboundMessage.objects.filter(kind=kind, status="PENDING").only("id", "payload"):
            OutboundMessage.objects.filter(id=message.id).update(lane=f"{kind}:{message.payload.get(field)}")
    lanes = OutboundMessage.objects.filter(status="PENDING").values_list("lane", flat=True).distinct()
    OutboxLane.objects.bulk_create([OutboxLane(name=name) for name in set(lanes)], ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_local_queue_host")]

    operations = [
        migrations.CreateModel(
            name="OutboxLane",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
                ("claim_token", models.UUIDField(blank=True, editable=False, null=True)),
                ("lease_until", models.DateTimeField(blank=True, null=True)),
                ("failures", models.PositiveIntegerField(default=0, help_text="failed batches in a row")),
                ("next_attempt_at", models.DateTimeField(blank=True, help_text="set after a failed batch", null=True)),
                ("last_error", models.TextField(blank=True)),
            ],
        ),
        migrations.AddField(model_name="outboundmessage", name="lane", field=models.CharField(default="", max_length=100), preserve_default=False),
        migrations.RemoveField(model_name="outboundmessage", name="claim_token"),
        migrations.RemoveField(model_name="outboundmessage", name="lease_until"),
        migrations.AlterField(
            model_name="outboundmessage",
            name="next_attempt_at",
            field=models.DateTimeField(default=portal.clock.now, help_text="after a failure: when its lane tries again"),
        ),
        migrations.RemoveIndex(model_name="outboundmessage", name="outbox_due_idx"),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(condition=models.Q(("status__in", ["FAILED", "INVALID"])), fields=["status"], name="outbox_problem_idx"),
        ),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(condition=models.Q(("status", "PENDING")), fields=["id"], name="outbox_pending_idx"),
        ),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(condition=models.Q(("status", "PENDING")), fields=["lane", "id"], name="outbox_lane_pending_idx"),
        ),
        migrations.RunPython(lanes_of_stored_messages, migrations.RunPython.noop),
    ]
