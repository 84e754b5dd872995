"""Issue 14, A3: the recharge center's keys dir held WeChat's platform private key (the README
started it on the simulator's ``--keys-dir``), and a notification signed with that file credited an
unpaid order. Now the product reads a merchant bundle, in which no key signs for WeChat, and
refuses to start — or to load a direct merchant's keys — where WeChat's private key lies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from recharge_service.adapters.key_guard import PlatformPrivateKeyFound
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.bootstrap import build_app
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import BadNotification, UnknownSerial, handle_notification
from recharge_service.settings import DatabaseSettings, NotifySettings, RechargeSettings
from scripts.stack import ROOT
from tests.integration.recharge_service.conftest import Wechat, new_order, reload
from tests.integration.recharge_service.fakes import FakeCard
from wechat_mock.adapters.keys import (
    PlatformKeys,
    ensure_direct_keys,
    ensure_keys,
    merchant_bundle_dir,
    platform_dir,
)

DIRECT_MCHID = "1230000109"


def start_center(tmp_path: Path, keys_dir: Path) -> subprocess.CompletedProcess[str]:
    """Start the recharge center as the README used to (the keys dir given), until it exits."""
    return subprocess.run(
        [
            sys.executable, "-m", "recharge_service", "--listen", "127.0.0.1:0",
            "--db", f"sqlite+aiosqlite:///{tmp_path / 'never.db'}",
            "--wechat-keys-dir", str(keys_dir), "--log-format", "json",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_center_started_on_the_simulators_keys_dir_refuses_to_start_naming_the_private_key(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "wechat-keys"
    ensure_keys(keys_dir)  # as the simulator leaves it
    done = start_center(tmp_path, keys_dir)
    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (refused,) = [e for e in events if e["event"] == "wechat_platform_private_key_refused"]
    assert refused["level"] == "error"
    assert refused["file"] == str(keys_dir / "platform" / "platform_private_key.pem")
    assert "merchant bundle" in refused["error"]
    assert "server_started" not in {e["event"] for e in events}
    assert not (tmp_path / "never.db").exists()  # refused before anything was opened


async def test_a_renamed_copy_of_the_private_key_in_the_bundle_stops_the_start_too(tmp_path: Path) -> None:
    keys_dir = tmp_path / "wechat-keys"
    keys = ensure_keys(keys_dir)
    bundle = merchant_bundle_dir(keys_dir)
    (bundle / "wechat.pem").write_bytes(keys.private_key_pem)
    settings = RechargeSettings(
        listen="127.0.0.1:0",
        database=DatabaseSettings(f"sqlite+aiosqlite:///{tmp_path / 'never.db'}"),
        notify=NotifySettings(wechat_keys_dir=str(bundle)),
    )
    with pytest.raises(PlatformPrivateKeyFound) as refused:
        await build_app(settings)
    assert refused.value.path == bundle / "wechat.pem"


async def test_no_key_in_the_centers_keys_dir_signs_a_notification_it_accepts(
    deps: Deps, card: FakeCard, opener: NotificationOpener, platform_keys: tuple[Path, PlatformKeys]
) -> None:
    """The attack of A3, by someone who reads every file of the product's keys dir (the bundle)."""
    bundle, wechat_keys = platform_keys
    stolen = {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()}
    private_keys = [name for name, data in stolen.items() if b"PRIVATE KEY-----" in data]
    assert private_keys == ["apiclient_key.pem"]  # the merchant's own: it signs requests, not for WeChat
    forger = Wechat(
        PlatformKeys(
            private_key_pem=stolen["apiclient_key.pem"],
            public_key_pem=stolen["platform_public_key.pem"],
            public_key_id=stolen["public_key_id.txt"].decode(),  # the right serial
            apiv3_key=stolen["apiv3_key.txt"].decode(),  # and a resource that decrypts
        )
    )
    order = await new_order(deps)
    ack = await handle_notification(deps, opener, *forger.paid(order))
    assert ack.code == "FAIL"
    assert "signature" in ack.message
    await deps.background.join()
    assert (await reload(deps, order.order_no)).status is OrderStatus.AWAITING_PAYMENT
    assert "ConfirmRecharge" not in card.methods()
    # The same notification signed by WeChat is accepted: the refusal above is the key's.
    genuine = await handle_notification(deps, opener, *Wechat(wechat_keys).paid(order))
    assert genuine.code == "SUCCESS"


def test_a_direct_merchants_keys_dir_holding_wechats_private_key_is_not_loaded(tmp_path: Path) -> None:
    keys = ensure_direct_keys(tmp_path, [DIRECT_MCHID])[DIRECT_MCHID]
    ensure_keys(tmp_path)
    opener = NotificationOpener(merchant_bundle_dir(tmp_path), max_skew_s=300)
    wrong = str(platform_dir(tmp_path, DIRECT_MCHID))  # a configuration naming WeChat's side
    with capture_logs() as logs:
        opener.use_direct_keys([wrong])
    assert [(e["event"], e["file"]) for e in logs] == [
        ("wechat_platform_private_key_refused", str(Path(wrong) / "platform_private_key.pem"))
    ]
    headers = Wechat(keys).headers(b"{}")
    with pytest.raises(UnknownSerial):
        opener.open(headers, b"{}")
    # Its bundle is what the configuration must name: that one loads.
    opener.use_direct_keys([str(merchant_bundle_dir(tmp_path, DIRECT_MCHID))])
    with pytest.raises(BadNotification, match="cannot decrypt"):  # its signature verified
        opener.open(headers, b"{}")
