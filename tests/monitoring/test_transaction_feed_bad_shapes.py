"""Items of any JSON shape are refused with a 400 naming the field, never a server error."""

from __future__ import annotations

import pytest

from monitoring.summaries.models import Transaction
from tests.monitoring.conftest import transaction_item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field", ["interface", "reference", "amount", "currency", "status", "received_at", "completed_at"])
@pytest.mark.parametrize("value", [[], {}, ["PENDING"], 5, True, 1.5, "\x00"], ids=repr)
def test_a_value_of_the_wrong_shape_is_a_400_naming_the_field(feeder, api_client_for, field, value):
    answer = api_client_for(feeder).post("/api/v1/transactions/", [transaction_item("SHAPE", **{field: value})], format="json")
    if answer.status_code == 201:  # a number where the API accepts one: an integer amount
        assert (field, value) in {("amount", 5), ("amount", 1.5)}
        return
    assert answer.status_code == 400, answer.content[:300]
    assert field in {error["field"] for error in answer.json()["errors"]}
    assert not Transaction.objects.exists()
