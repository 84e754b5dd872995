"""Read-only use cases: one order, a page of orders, orders found by a number, an order's timeline."""

from __future__ import annotations

from collections.abc import Sequence

from rc_common.errors import InvalidArgument, NotFound
from recharge_service.domain.merchant import check_merchant_id
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TimelineEntry
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.orders import load_order
from recharge_service.service_layer.storage import OrderPage, read_order_page_token

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: FindOrders answers this many orders unless asked for fewer or more, and never more than the cap.
FIND_LIMIT, FIND_MAX = 20, 100


async def get_order(deps: Deps, merchant_id: str, order_no: str) -> RechargeOrder:
    """The order, when it is ``merchant_id``'s (another merchant's is NOT_FOUND, as a missing one)."""
    check_merchant_id(merchant_id)
    if not order_no:
        raise InvalidArgument("order_no", "required")
    return await load_order(deps, order_no, merchant_id=merchant_id)


def page_size_of(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page.page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


async def list_orders(
    deps: Deps,
    *,
    merchant_id: str,
    card_no: str = "",
    statuses: Sequence[int] = (),
    channel: int = 0,
    page_size: int = 0,
    page_token: str = "",
) -> OrderPage:
    check_merchant_id(merchant_id)
    try:
        wanted = [OrderStatus(s) for s in statuses]
    except ValueError:
        raise InvalidArgument("filter.statuses", "unknown or unspecified status") from None
    try:
        channel_filter = Channel(channel) if channel else None
    except ValueError:
        raise InvalidArgument("filter.channel", "unknown channel") from None
    if page_token:
        try:
            read_order_page_token(page_token)
        except ValueError:
            raise InvalidArgument("page.page_token", "not a token from a previous page") from None
    async with deps.uow(readonly=True) as uow:
        return await uow.orders.list(
            merchant_id=merchant_id,
            card_no=card_no,
            statuses=wanted,
            channel=channel_filter,
            page_size=page_size_of(page_size),
            page_token=page_token,
        )


async def find_orders(
    deps: Deps, query: str, *, merchant_id: str = "", limit: int = 0
) -> list[RechargeOrder]:
    """Orders whose order number, card number or WeChat transaction id is exactly ``query``, newest
    first (``limit``: default 20, at most 100); with ``merchant_id``, only that merchant's."""
    wanted = query.strip()
    if not wanted:
        raise InvalidArgument("query", "required: an order number, card number or WeChat transaction id")
    if merchant_id:
        check_merchant_id(merchant_id)
    if limit < 0:
        raise InvalidArgument("limit", "must not be negative")
    size = min(limit or FIND_LIMIT, FIND_MAX)
    async with deps.uow(readonly=True) as uow:
        return list(await uow.orders.find(wanted, merchant_id=merchant_id, limit=size))


async def get_timeline(deps: Deps, order_no: str, merchant_id: str = "") -> list[TimelineEntry]:
    """An order's timeline; with ``merchant_id``, only when the order is that merchant's."""
    if merchant_id:
        check_merchant_id(merchant_id)
    if not order_no:
        raise InvalidArgument("order_no", "required")
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
        if order is None or (merchant_id and order.merchant_id != merchant_id):
            raise NotFound(f"no recharge order {order_no!r}")
        return await uow.timeline.for_order(order_no)
