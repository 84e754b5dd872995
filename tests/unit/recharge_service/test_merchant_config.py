"""Merchant configurations without I/O: the JSON codec, validation naming the field at fault, the
proto converters, the ``put_merchant`` use case over an in-memory directory, the CLI's parsing."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from protos.recharge.v1 import recharge_pb2
from rc_common.errors import InvalidArgument
from recharge_service.adapters.merchants import config_from_json, config_to_json
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, WechatMode
from recharge_service.domain.order import Channel
from recharge_service.entrypoints.merchant_messages import (
    DEFAULT_ORDER_EXPIRY,
    merchant_from_proto,
    merchant_to_proto,
)
from recharge_service.entrypoints.ops_cli import callback_value, changed_fields, channel_list, parser
from recharge_service.service_layer.merchants import MerchantChange, put_merchant

AT = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def direct_merchant(**changes: object) -> MerchantConfig:
    config = MerchantConfig(
        merchant_id="shop-7",
        display_name="七号店 储值卡",
        channels=frozenset({Channel.POS, Channel.OFFICIAL_ACCOUNT}),
        callbacks={Channel.POS: "pos.internal:7000", Channel.OFFICIAL_ACCOUNT: "oa:7001"},
        order_expiry=timedelta(minutes=15),
        wechat=WechatAccount(WechatMode.DIRECT, "1230000109", "wx8888888888888888", "/etc/keys/shop-7"),
        max_open_orders=50,
        max_create_rate=20,
        disabled=True,
        version=3,
        updated_at=AT,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def partner_merchant(**changes: object) -> MerchantConfig:
    config = MerchantConfig(
        merchant_id="m1",
        display_name="Merchant One",
        channels=frozenset({Channel.THIRD_PARTY}),
        wechat=WechatAccount(WechatMode.PARTNER, "1900000200"),
    )
    return replace(config, **changes)  # type: ignore[arg-type]


# -- the codec ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [direct_merchant(), partner_merchant()], ids=["direct", "partner"])
def test_the_json_codec_round_trips_every_field(config: MerchantConfig) -> None:
    text = config_to_json(config)
    assert config_from_json(text) == config
    assert config_from_json(text).callbacks == config.callbacks  # (not part of the hash, compared too)


def test_the_json_names_channels_and_keeps_the_expiry_in_seconds() -> None:
    data = json.loads(config_to_json(direct_merchant()))
    assert data["channels"] == ["OFFICIAL_ACCOUNT", "POS"]
    assert data["callbacks"] == {"OFFICIAL_ACCOUNT": "oa:7001", "POS": "pos.internal:7000"}
    assert data["order_expiry"] == 900
    assert data["wechat"] == {
        "mode": "direct",
        "mchid": "1230000109",
        "appid": "wx8888888888888888",
        "keys_dir": "/etc/keys/shop-7",
    }
    assert data["display_name"] == "七号店 储值卡"
    assert datetime.fromisoformat(data["updated_at"]) == AT
    assert data["version"] == 3 and data["disabled"] is True


def test_a_field_missing_from_stored_json_takes_its_default() -> None:
    config = config_from_json(
        '{"merchant_id": "m1", "display_name": "M", "channels": ["POS"],'
        ' "wechat": {"mode": "partner", "mchid": "1900000200"}, "version": 1}'
    )
    assert config.order_expiry == timedelta(minutes=30)
    assert config.max_open_orders == 0 and not config.disabled and config.callbacks == {}
    assert config.updated_at is None


# -- validation --------------------------------------------------------------------------------


def test_valid_configurations_pass() -> None:
    assert direct_merchant().checked() == direct_merchant()
    assert partner_merchant().checked() == partner_merchant()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"merchant_id": "has space"}, "merchant.merchant_id"),
        ({"display_name": ""}, "merchant.display_name"),
        ({"display_name": "x" * 65}, "merchant.display_name"),
        ({"channels": frozenset()}, "merchant.channels"),
        ({"callbacks": {Channel.THIRD_PARTY: "tp:1"}}, "merchant.callbacks"),  # not an enabled channel
        ({"callbacks": {Channel.POS: "no-port"}}, "merchant.callbacks"),
        ({"order_expiry": timedelta(0)}, "merchant.order_expiry_seconds"),
        ({"order_expiry": timedelta(days=8)}, "merchant.order_expiry_seconds"),
        ({"wechat": WechatAccount(WechatMode.DIRECT, "12ab")}, "merchant.wechat.mchid"),
        ({"wechat": WechatAccount(WechatMode.DIRECT, "1230000109")}, "merchant.wechat.keys_dir"),
        ({"wechat": WechatAccount(WechatMode.PARTNER, "1230000109", "", "/k")}, "merchant.wechat.keys_dir"),
        ({"max_open_orders": -1}, "merchant.max_open_orders"),
        ({"max_create_rate": 1_000_001}, "merchant.max_create_rate"),
    ],
)
def test_checked_refuses_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        direct_merchant(**changes).checked()
    assert refused.value.field == field


# -- the proto converters ----------------------------------------------------------------------


def test_proto_round_trip_keeps_the_configuration() -> None:
    config = direct_merchant()
    message = merchant_to_proto(config)
    assert message.version == 3 and message.updated_at.seconds == int(AT.timestamp())
    assert list(message.channels) == [recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT, recharge_pb2.CHANNEL_POS]
    assert message.wechat.mode == recharge_pb2.WECHAT_MODE_DIRECT
    # version and updated_at are the server's: a request's are ignored
    assert merchant_from_proto(message) == replace(config, version=0, updated_at=None)


def proto(**changes: object) -> recharge_pb2.Merchant:
    message = merchant_to_proto(partner_merchant())
    for name, value in changes.items():
        message.ClearField(name)  # type: ignore[arg-type]
        if isinstance(value, list):
            getattr(message, name).extend(value)
        elif isinstance(value, recharge_pb2.WechatPayConfig):
            message.wechat.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def test_an_expiry_of_zero_is_the_default() -> None:
    assert merchant_from_proto(proto(order_expiry_seconds=0)).order_expiry == DEFAULT_ORDER_EXPIRY
    assert merchant_from_proto(proto(order_expiry_seconds=0), timedelta(hours=2)).order_expiry == timedelta(
        hours=2
    )
    assert merchant_from_proto(proto(order_expiry_seconds=120)).order_expiry == timedelta(minutes=2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channels": [recharge_pb2.CHANNEL_POS, 9]}, "merchant.channels"),
        ({"channels": [recharge_pb2.CHANNEL_UNSPECIFIED]}, "merchant.channels"),
        ({"callbacks": [recharge_pb2.CallbackTarget(channel=7, target="h:1")]}, "merchant.callbacks"),  # type: ignore[arg-type]
        (
            {
                "callbacks": [
                    recharge_pb2.CallbackTarget(channel=recharge_pb2.CHANNEL_THIRD_PARTY, target="a:1"),
                    recharge_pb2.CallbackTarget(channel=recharge_pb2.CHANNEL_THIRD_PARTY, target="b:2"),
                ]
            },
            "merchant.callbacks",
        ),
        ({"wechat": recharge_pb2.WechatPayConfig(mchid="1900000200")}, "merchant.wechat.mode"),
        ({"wechat": recharge_pb2.WechatPayConfig(mode=5, mchid="1900000200")}, "merchant.wechat.mode"),  # type: ignore[arg-type]
    ],
)
def test_unknown_enum_values_and_repeated_callbacks_are_refused(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        merchant_from_proto(proto(**changes))
    assert refused.value.field == field


def test_an_empty_callback_target_means_no_callback() -> None:
    message = proto(
        callbacks=[recharge_pb2.CallbackTarget(channel=recharge_pb2.CHANNEL_THIRD_PARTY, target="")]
    )
    assert merchant_from_proto(message).callbacks == {}


# -- put_merchant ------------------------------------------------------------------------------


class Directory:
    """Records puts; answers them like the real one (the version after ``expected``)."""

    def __init__(self) -> None:
        self.puts: list[tuple[MerchantConfig, int, str, str]] = []

    async def current(self, merchant_id: str) -> MerchantConfig | None:
        raise NotImplementedError

    async def version(self, merchant_id: str, version: int) -> MerchantConfig | None:
        raise NotImplementedError

    async def history(self, merchant_id: str) -> list[MerchantChange]:
        raise NotImplementedError

    async def all(self) -> list[MerchantConfig]:
        raise NotImplementedError

    async def put(
        self, config: MerchantConfig, expected_version: int, operator: str, reason: str, at: datetime
    ) -> MerchantConfig:
        self.puts.append((config, expected_version, operator, reason))
        return replace(config, version=expected_version + 1, updated_at=at)


async def test_put_merchant_writes_a_checked_config_with_who_and_why() -> None:
    directory = Directory()
    written = await put_merchant(directory, partner_merchant(), 0, "  alice ", " onboarding\n", AT)
    assert written.version == 1 and written.updated_at == AT
    assert directory.puts == [(partner_merchant(), 0, "alice", "onboarding")]


@pytest.mark.parametrize(
    ("config", "expected", "operator", "reason", "field"),
    [
        (partner_merchant(), 0, "", "why", "operator"),
        (partner_merchant(), 0, "   ", "why", "operator"),
        (partner_merchant(), 0, "x" * 65, "why", "operator"),
        (partner_merchant(), 0, "alice", "", "reason"),
        (partner_merchant(), 0, "alice", "r" * 501, "reason"),
        (partner_merchant(display_name=""), 0, "alice", "why", "merchant.display_name"),
        (partner_merchant(), -1, "alice", "why", "expected_version"),
    ],
)
async def test_put_merchant_refuses_bad_input_and_writes_nothing(
    config: MerchantConfig, expected: int, operator: str, reason: str, field: str
) -> None:
    directory = Directory()
    with pytest.raises(InvalidArgument) as refused:
        await put_merchant(directory, config, expected, operator, reason, AT)
    assert refused.value.field == field
    assert directory.puts == []


# -- the CLI's parsing -------------------------------------------------------------------------


def test_channels_and_callbacks_are_read_the_way_operators_type_them() -> None:
    assert channel_list("pos, official-account,POS") == [
        recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT,
        recharge_pb2.CHANNEL_POS,
    ]
    assert callback_value("third_party=10.0.0.9:7000") == (recharge_pb2.CHANNEL_THIRD_PARTY, "10.0.0.9:7000")
    assert callback_value("POS=") == (recharge_pb2.CHANNEL_POS, "")
    for bad in ("", "POS,LOST"):
        with pytest.raises(argparse.ArgumentTypeError):
            channel_list(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        callback_value("POS:1.2.3.4:5")


def test_merchant_put_needs_an_id_and_a_reason_and_takes_only_the_flags_given() -> None:
    cli = parser()
    args = cli.parse_args(["merchant-put", "--merchant-id", "m1", "--reason", "r"])
    given = ("display_name", "channels", "order_expiry", "wechat_mode", "max_open_orders", "disabled")
    assert all(getattr(args, name) is None for name in given) and args.callback is None
    args = cli.parse_args(
        "merchant-put --merchant-id m1 --enabled --callback POS=h:1 --callback POS=h:2 "
        "--reason r".split()
    )
    assert args.disabled is False and args.callback == [(2, "h:1"), (2, "h:2")]
    for bad in (
        ["--reason", "r"],
        ["--merchant-id", "m1"],
        ["--merchant-id", "m1", "--reason", "r", "--disabled", "--enabled"],
        ["--merchant-id", "m1", "--reason", "r", "--wechat-mode", "other"],
        ["--merchant-id", "m1", "--reason", "r", "--channels", "FAX"],
    ):
        with pytest.raises(SystemExit):
            cli.parse_args(["merchant-put", *bad])


def test_the_history_says_which_fields_each_version_changed() -> None:
    v1 = config_to_json(partner_merchant(version=1, updated_at=AT))
    v2 = config_to_json(
        partner_merchant(
            version=2,
            updated_at=AT + timedelta(hours=1),
            display_name="M1",
            callbacks={Channel.THIRD_PARTY: "tp:1"},
        )
    )
    v3 = config_to_json(partner_merchant(version=3, updated_at=AT + timedelta(hours=2), display_name="M1"))
    assert changed_fields(None, v1) == "created"
    assert changed_fields(v1, v2) == "callbacks.THIRD_PARTY, display_name"
    assert changed_fields(v2, v3) == "callbacks.THIRD_PARTY"
    assert changed_fields(v3, v3) == "-"
