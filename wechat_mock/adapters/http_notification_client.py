"""Delivers notifications the way WeChat Pay does: an HTTPS POST of the signed JSON body to the
``notify_url`` the prepay (or refund) request carried (``http://`` only to a loopback host).

One ``httpx.AsyncClient`` for every URL (connection reuse). Trust: the system's CAs, or the CA
file of ``--notify-ca-file``; TLS verification is never off. A 2xx answer is an acknowledgement
(WeChat's "200/204 with no body", or ``{"code":"SUCCESS"}``); any other status is the merchant
refusing it (REFUSED, retried on the schedule); a timeout, a refused connection or a TLS failure
is NO_ANSWER (retried too). Redirects are not followed (WeChat does not)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import httpx

from wechat_mock.service_layer.ports import DeliveryOutcome, DeliveryResult

USER_AGENT = "wechat_mock-notifier (WeChat Pay APIv3 simulator)"
#: How much of a refusal's body the detail keeps.
DETAIL_BODY = 200


def ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """Verifying context: the system's trust store, or only ``ca_file`` when one is given."""
    return ssl.create_default_context(cafile=ca_file or None)


class HttpNotificationClient:
    def __init__(self, ca_file: str = "") -> None:
        self._client = httpx.AsyncClient(
            verify=ssl_context(ca_file),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def deliver_to(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> DeliveryResult:
        sent = {**headers, "Content-Type": "application/json"}
        try:
            response = await self._client.post(url, content=body, headers=sent, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            return DeliveryResult(DeliveryOutcome.NO_ANSWER, f"{url} gave no answer: timeout ({exc!r})", url)
        except httpx.HTTPError as exc:
            return DeliveryResult(DeliveryOutcome.NO_ANSWER, f"{url} gave no answer: {exc!r}", url)
        if 200 <= response.status_code < 300:
            return DeliveryResult(DeliveryOutcome.ACKNOWLEDGED, f"{url} answered {response.status_code}", url)
        text = response.text[:DETAIL_BODY]
        return DeliveryResult(DeliveryOutcome.REFUSED, f"{url} answered {response.status_code}: {text}", url)

    async def close(self) -> None:
        await self._client.aclose()
