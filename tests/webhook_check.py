#!/usr/bin/env python3
"""An independent Standard Webhooks implementation for routewitness's tests.

It shares no code with the signer: v1 (HMAC-SHA256) goes through the `standardwebhooks`
package from PyPI (its wheel, given as the first argument, is put on sys.path: the
package is pure Python), v1a (ed25519) through `cryptography`.

    webhook_check.py WHEEL verify KEY ID TIMESTAMP SIGNATURE BODYFILE   exit 0 when verified
    webhook_check.py WHEEL sign KEY ID TIMESTAMP BODYFILE                prints one signature
"""
import base64
import sys
from datetime import datetime, timezone

sys.path.insert(0, sys.argv[1])
from standardwebhooks import Webhook, WebhookVerificationError  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: E402
    Ed25519PrivateKey,
    Ed25519PublicKey,
)


def b64(text):
    return base64.b64decode(text + "=" * (-len(text) % 4))


def verify(key, msg_id, ts, sig, body):
    if key.startswith("whsec_"):
        headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}
        try:
            Webhook(key).verify(body, headers, json_parse=False)
        except WebhookVerificationError as e:
            print("refused:", e)
            return 1
        print("v1 verified")
        return 0
    public = Ed25519PublicKey.from_public_bytes(b64(key[len("whpk_"):]))
    content = f"{msg_id}.{ts}.".encode() + body
    for part in sig.split(" "):
        version, _, value = part.partition(",")
        if version != "v1a":
            continue
        try:
            public.verify(b64(value), content)
        except InvalidSignature:
            continue
        print("v1a verified")
        return 0
    print("refused: no v1a signature verifies")
    return 1


def sign(key, msg_id, ts, body):
    if key.startswith("whsec_"):
        when = datetime.fromtimestamp(int(ts), tz=timezone.utc)
        print(Webhook(key).sign(msg_id, when, body.decode()))
        return 0
    private = Ed25519PrivateKey.from_private_bytes(b64(key[len("whsk_"):])[:32])
    signature = private.sign(f"{msg_id}.{ts}.".encode() + body)
    print("v1a," + base64.b64encode(signature).decode())
    return 0


def main():
    mode, key = sys.argv[2], sys.argv[3]
    if mode == "verify":
        with open(sys.argv[7], "rb") as f:
            return verify(key, sys.argv[4], sys.argv[5], sys.argv[6], f.read())
    with open(sys.argv[6], "rb") as f:
        return sign(key, sys.argv[4], sys.argv[5], f.read())


sys.exit(main())
