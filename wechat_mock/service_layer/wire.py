"""WeChat's wire format for notifications: seal a draft into a body (encrypted resource), and
sign a body afresh for each delivery attempt."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime

from rc_common import wechatpay_crypto as crypto
from wechat_mock.domain import ids
from wechat_mock.domain.notifications import Notification, NotificationDraft
from wechat_mock.domain.times import format_time
from wechat_mock.service_layer.ports import SigningKeys


class WireFormat:
    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys

    def seal(self, draft: NotificationDraft, now: datetime) -> Notification:
        """The notification record: its body is built once; every retry sends the same bytes."""
        plaintext = json.dumps(draft.resource, ensure_ascii=False, separators=(",", ":"))
        resource = crypto.encrypt_resource(
            self.keys.apiv3_key,
            plaintext,
            draft.associated_data,
            original_type=draft.original_type,
        )
        notification_id = ids.notification_id()
        body = crypto.build_notification_body(
            notification_id=notification_id,
            create_time=format_time(now),
            event_type=draft.event_type,
            summary=draft.summary,
            resource=resource,
        )
        return Notification(
            id=notification_id,
            event_type=draft.event_type,
            out_trade_no=draft.out_trade_no,
            out_refund_no=draft.out_refund_no,
            body=body,
            created_at=now,
            next_attempt_at=now,
        )

    def headers(self, body: bytes, now: datetime) -> dict[str, str]:
        """Freshly signed headers: a new nonce and the current timestamp."""
        return crypto.signed_headers(
            self.keys.private_key_pem, self.keys.public_key_id, body, timestamp=int(now.timestamp())
        )

    def probe_headers(self, body: bytes, now: datetime) -> dict[str, str]:
        """A signature probe: WeChat's deliberately invalid ``WECHATPAY/SIGNTEST/…`` signature."""
        headers = self.headers(body, now)
        headers[crypto.HEADER_SIGNATURE] = crypto.SIGN_TEST_PREFIX + base64.b64encode(
            secrets.token_bytes(192)
        ).decode("ascii")
        return headers
