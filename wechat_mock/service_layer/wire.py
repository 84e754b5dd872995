"""WeChat's wire format for notifications: seal a draft into a body (encrypted resource), and
sign a body afresh for each delivery attempt.

Whose keys: the service provider's (partner-mode trades, signer '') or the direct merchant's own
(its platform private key signs, its public key id is the ``Wechatpay-Serial``, its APIv3 key
encrypts). A notification keeps its signer, so every retry is signed with the same keys."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import datetime

from rc_common import wechatpay_crypto as crypto
from wechat_mock.domain import ids
from wechat_mock.domain.notifications import Notification, NotificationDraft
from wechat_mock.domain.times import format_time
from wechat_mock.service_layer.ports import SigningKeys


class UnknownSigner(LookupError):
    """A notification of a direct merchant whose keys are not loaded (no longer in
    --direct-merchants): it cannot be signed."""


class WireFormat:
    def __init__(self, keys: SigningKeys, direct: Mapping[str, SigningKeys] | None = None) -> None:
        #: The service provider's keys (partner mode).
        self.keys = keys
        #: Each direct-mode merchant's own keys, by mchid.
        self.direct = dict(direct or {})

    def keys_of(self, signer: str) -> SigningKeys:
        """The keys of ``signer``: '' = the service provider's, else the direct merchant's."""
        if not signer:
            return self.keys
        try:
            return self.direct[signer]
        except KeyError:
            raise UnknownSigner(f"no keys for direct merchant {signer} (not in --direct-merchants)") from None

    def seal(self, draft: NotificationDraft, now: datetime) -> Notification:
        """The notification record: its body is built once; every retry sends the same bytes."""
        plaintext = json.dumps(draft.resource, ensure_ascii=False, separators=(",", ":"))
        resource = crypto.encrypt_resource(
            self.keys_of(draft.signer).apiv3_key,
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
            signer=draft.signer,
            notify_url=draft.notify_url,
        )

    def headers(self, body: bytes, now: datetime, signer: str = "") -> dict[str, str]:
        """Freshly signed headers (``signer``'s keys): a new nonce and the current timestamp."""
        keys = self.keys_of(signer)
        return crypto.signed_headers(
            keys.private_key_pem, keys.public_key_id, body, timestamp=int(now.timestamp())
        )

    def probe_headers(self, body: bytes, now: datetime, signer: str = "") -> dict[str, str]:
        """A signature probe: WeChat's deliberately invalid ``WECHATPAY/SIGNTEST/…`` signature."""
        headers = self.headers(body, now, signer)
        headers[crypto.HEADER_SIGNATURE] = crypto.SIGN_TEST_PREFIX + base64.b64encode(
            secrets.token_bytes(192)
        ).decode("ascii")
        return headers
