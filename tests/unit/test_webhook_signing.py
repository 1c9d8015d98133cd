"""Standard Webhooks signatures: the spec's test vector, rotation, secrets and the SSRF guard."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from engine.webhooks import BadSecret, new_secret, refused_address, sign

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_our_signature_matches_the_standard_webhooks_test_vector() -> None:
    assert sign([VECTOR_SECRET], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                '{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_during_rotation_both_signatures_are_sent_and_either_key_verifies() -> None:
    old, new = new_secret(), new_secret()
    import time

    stamp = int(time.time())
    header = sign([new, old], "msg_1", stamp, '{"a":1}')
    assert len(header.split(" ")) == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
               "webhook-signature": header}
    for secret in (old, new):
        assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}


def test_svix_verifies_our_signature_and_refuses_a_tampered_body() -> None:
    import time

    secret, stamp = new_secret(), int(time.time())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(stamp),
               "webhook-signature": sign([secret], "msg_2", stamp, '{"lead":"x"}')}
    SvixWebhook(secret).verify('{"lead":"x"}', dict(headers))  # raises when it does not verify
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(secret).verify('{"lead":"y"}', dict(headers))
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(new_secret()).verify('{"lead":"x"}', dict(headers))


@pytest.mark.parametrize(("secret", "reason"), [
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a webhook secret starts with whsec_"),
    ("whsec_not base64!", "a webhook secret is whsec_ followed by base64"),
    ("whsec_c2hvcnQ=", "a webhook secret holds 24 to 64 bytes"),
])
def test_bad_secrets_are_refused_with_the_reason(secret: str, reason: str) -> None:
    with pytest.raises(BadSecret, match=reason):
        sign([secret], "msg_1", 1, "{}")


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.10", True), ("169.254.169.254", True),
    ("::1", True), ("fe80::1", True), ("0.0.0.0", True),  # noqa: S104 (an address to refuse)
    ("100.64.0.1", True), ("192.0.0.8", True),              # shared (CGN), IETF protocol
    ("2002:7f00:1::", True), ("::ffff:127.0.0.1", True),    # loopback in 6to4, IPv4-mapped
    ("64:ff9b::a00:1", True),                                # 10.0.0.1 through NAT64
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", True),          # Teredo of 127.0.0.1
    ("93.184.215.14", False), ("2606:4700::1111", False), ("2002:5db8:d70e::", False),
])
def test_endpoints_resolving_to_internal_addresses_are_refused(address: str,
                                                               refused: bool) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return [address]

    reason = refused_address("https://crm.example.com/hook", resolver)
    assert (reason is not None) is refused
    if refused:
        assert reason is not None
        assert reason.startswith(f"crm.example.com resolves to {address}")
