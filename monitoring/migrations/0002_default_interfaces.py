from django.db import migrations

DEFAULT_INTERFACES = [
    ("PAYMENT_ORIGINATOR", "Payment originator", "HOSTED", "PAYMENT_ORIGINATOR.IN", "PAYMENT_ORIGINATOR.OUT"),
    ("BATCH_PAYMENT_ORIGINATOR", "Batch payment originator", "HOSTED", "BATCH_PAYMENT_ORIGINATOR.IN", "BATCH_PAYMENT_ORIGINATOR.OUT"),
    ("LIQUIDITY_SERVICE", "Liquidity service", "INVOKED", "LIQUIDITY_SERVICE.IN", "LIQUIDITY_SERVICE.OUT"),
    ("REPAIR_SERVICE", "Repair service", "INVOKED", "REPAIR_SERVICE.IN", "REPAIR_SERVICE.OUT"),
    ("PAYMENTS_GATEWAY", "Payments gateway", "INVOKED", "PAYMENTS_GATEWAY.IN", "PAYMENTS_GATEWAY.OUT"),
]


def create_interfaces(apps, schema_editor):
    MonitoredInterface = apps.get_model("monitoring", "MonitoredInterface")
    for code, name, direction, inbound, outbound in DEFAULT_INTERFACES:
        MonitoredInterface.objects.get_or_create(
            code=code,
            defaults={"name": name, "direction": direction, "inbound_channel": inbound, "outbound_channel": outbound},
        )


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]
    operations = [migrations.RunPython(create_interfaces, migrations.RunPython.noop)]
