"""portal_messages_published_total from a tally from now on: it starts at the messages sent so far."""

from django.db import migrations
from django.db.models import Count


def count_what_was_sent(apps, schema_editor):
    OutboundMessage = apps.get_model("portal", "OutboundMessage")
    Tally = apps.get_model("alerts", "Tally")
    sent = OutboundMessage.objects.filter(status="SENT").values_list("kind").annotate(n=Count("id")).order_by()
    for kind, count in sent:
        Tally.objects.update_or_create(name="messages_published", key=kind, defaults={"value": count})


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial"), ("portal", "0005_outbox_lanes")]

    operations = [migrations.RunPython(count_what_was_sent, migrations.RunPython.noop)]
