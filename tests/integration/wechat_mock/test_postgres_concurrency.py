"""The simulator's concurrency tests again, on PostgreSQL (real row locks, real concurrent writers)."""

from __future__ import annotations

import pytest

from tests.integration.wechat_mock.test_payments import (  # noqa: F401 - collected here again
    test_concurrent_identical_prepays_make_one_order,
    test_concurrent_payments_take_the_money_once_and_notify_once,
)
from tests.integration.wechat_mock.test_refunds import (  # noqa: F401 - collected here again
    test_concurrent_refunds_with_new_numbers_never_exceed_the_amount,
    test_concurrent_retries_of_one_out_refund_no_make_one_refund,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_backend() -> str:
    return "postgresql"
