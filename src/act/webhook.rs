//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): what makes an alert
//! provably routewitness's.
//!
//! A request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`: space-separated `VERSION,BASE64` signatures of the content
//! `ID.TIMESTAMP.BODY`:
//! - `v1a`: ed25519 (ed25519-dalek) with a `whsk_` secret key; receivers verify with the
//!   `whpk_` public key (base64 of its 32 bytes), so a leaked receiver key forges nothing;
//! - `v1`: HMAC-SHA256 with a `whsec_` shared secret (base64 of its bytes), for receivers
//!   that only do that.
//!
//! Several keys sign each request at once during a rotation; a receiver accepts the
//! request when any signature verifies with any of its keys. `whsk_` keys are written as
//! base64 of the 32-byte seed (RFC 8032's private key); the 64-byte seed-and-public-key
//! form some libraries write is read too (its public half must match).
//!
//! [`verify`] is what `routewitness webhook verify` runs for receivers' own tests; it
//! checks the timestamp against a tolerance (5 min by default) as the spec asks, so a
//! captured request cannot be replayed later.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A key as configured.
#[derive(Clone)]
pub enum Key {
    /// `whsk_`: signs `v1a` (and verifies with its public half).
    Secret(SigningKey),
    /// `whpk_`: verifies `v1a`.
    Public(VerifyingKey),
    /// `whsec_`: signs and verifies `v1`.
    Shared(Vec<u8>),
}

impl std::fmt::Debug for Key {
    /// Never the secret itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Secret(k) => write!(f, "whsk_ (public {})", public_text(&k.verifying_key())),
            Key::Public(k) => write!(f, "{}", public_text(k)),
            Key::Shared(_) => write!(f, "whsec_ (hidden)"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("not a key: {0}")]
    BadKey(String),
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a Unix time: {0:?}")]
    BadTimestamp(String),
    #[error("the timestamp is {0} s away from now, beyond the tolerance")]
    Stale(i64),
    #[error("no signature verifies with the keys given")]
    NoMatch,
}

fn public_text(k: &VerifyingKey) -> String {
    format!("whpk_{}", B64.encode(k.to_bytes()))
}

impl Key {
    /// Reads `whsk_...`, `whpk_...` or `whsec_...` (padding optional).
    pub fn parse(text: &str) -> Result<Key, WebhookError> {
        let text = text.trim();
        let bad = |why: &str| WebhookError::BadKey(format!("{why} ({} characters)", text.len()));
        let decode = |b: &str| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(b.trim_end_matches('='))
                .map_err(|_| bad("not base64"))
        };
        if let Some(b) = text.strip_prefix("whsk_") {
            let bytes = decode(b)?;
            let seed: [u8; 32] = bytes
                .get(..32)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("a whsk_ key is 32 (or 64) bytes"))?;
            let key = SigningKey::from_bytes(&seed);
            match bytes.len() {
                32 => {}
                64 if bytes[32..] == key.verifying_key().to_bytes() => {}
                64 => return Err(bad("the 64-byte whsk_ key's public half does not match")),
                _ => return Err(bad("a whsk_ key is 32 (or 64) bytes")),
            }
            Ok(Key::Secret(key))
        } else if let Some(b) = text.strip_prefix("whpk_") {
            let bytes: [u8; 32] = decode(b)?
                .try_into()
                .map_err(|_| bad("a whpk_ key is 32 bytes"))?;
            VerifyingKey::from_bytes(&bytes)
                .map(Key::Public)
                .map_err(|_| bad("not an ed25519 public key"))
        } else if let Some(b) = text.strip_prefix("whsec_") {
            let bytes = decode(b)?;
            if bytes.len() < 24 {
                return Err(bad("a whsec_ secret is at least 24 bytes"));
            }
            Ok(Key::Shared(bytes))
        } else {
            Err(bad("a key starts with whsk_, whpk_ or whsec_"))
        }
    }

    /// The public key to give receivers (for a `whsk_` key).
    pub fn public(&self) -> Option<String> {
        match self {
            Key::Secret(k) => Some(public_text(&k.verifying_key())),
            Key::Public(k) => Some(public_text(k)),
            Key::Shared(_) => None,
        }
    }
}

/// A new ed25519 key pair: (`whsk_`, `whpk_`).
pub fn keygen() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let k = SigningKey::from_bytes(&seed);
    Ok((
        format!("whsk_{}", B64.encode(seed)),
        public_text(&k.verifying_key()),
    ))
}

/// A new shared secret (`whsec_`, 32 random bytes).
pub fn new_secret() -> Result<String, String> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("whsec_{}", B64.encode(s)))
}

fn content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut c = format!("{id}.{timestamp}.").into_bytes();
    c.extend_from_slice(body);
    c
}

fn hmac(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The `webhook-signature` value: one signature per signing key (public keys sign
/// nothing and are skipped).
pub fn sign(keys: &[Key], id: &str, timestamp: i64, body: &[u8]) -> String {
    let msg = content(id, timestamp, body);
    keys.iter()
        .filter_map(|k| match k {
            Key::Secret(s) => Some(format!("v1a,{}", B64.encode(s.sign(&msg).to_bytes()))),
            Key::Shared(s) => Some(format!("v1,{}", B64.encode(hmac(s, &msg)))),
            Key::Public(_) => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a received request: its timestamp within `tolerance_s` of `now` (Unix
/// seconds), and one of its signatures valid under one of `keys`. Returns the
/// signature version that verified.
pub fn verify(
    keys: &[Key],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<&'static str, WebhookError> {
    let id = id.ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let ts_text = timestamp.ok_or(WebhookError::MissingHeader("webhook-timestamp"))?;
    let signature = signature.ok_or(WebhookError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| WebhookError::BadTimestamp(ts_text.to_string()))?;
    let skew = now.saturating_sub(ts);
    if skew.abs() > tolerance_s {
        return Err(WebhookError::Stale(skew));
    }
    let msg = content(id, ts, body);
    for part in signature.split_whitespace() {
        let Some((version, b64)) = part.split_once(',') else {
            continue;
        };
        let Ok(sig) = B64.decode(b64) else {
            continue;
        };
        for k in keys {
            let ok = match (version, k) {
                ("v1a", Key::Secret(s)) => verify_ed25519(&s.verifying_key(), &msg, &sig),
                ("v1a", Key::Public(p)) => verify_ed25519(p, &msg, &sig),
                ("v1", Key::Shared(s)) => {
                    let mut mac = HmacSha256::new_from_slice(s).expect("any key length");
                    mac.update(&msg);
                    mac.verify_slice(&sig).is_ok()
                }
                _ => false,
            };
            if ok {
                return Ok(if version == "v1a" { "v1a" } else { "v1" });
            }
        }
    }
    Err(WebhookError::NoMatch)
}

fn verify_ed25519(k: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&bytes))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signatures_verify_with_the_right_keys_only() {
        let (sk, pk) = keygen().unwrap();
        let shared = new_secret().unwrap();
        let keys = [Key::parse(&sk).unwrap(), Key::parse(&shared).unwrap()];
        let sig = sign(&keys, "msg_1", 1_700_000_000, b"{\"type\":\"x\"}");
        assert!(sig.starts_with("v1a,") && sig.contains(" v1,"), "{sig}");
        let body = b"{\"type\":\"x\"}";
        let v = |keys: &[Key], body: &[u8], id: &str, now: i64| {
            verify(
                keys,
                Some(id),
                Some("1700000000"),
                Some(&sig),
                body,
                now,
                300,
            )
        };
        // The receiver's public key, or the shared secret.
        assert_eq!(
            v(&[Key::parse(&pk).unwrap()], body, "msg_1", 1_700_000_100),
            Ok("v1a")
        );
        assert_eq!(
            v(
                &[Key::parse(&shared).unwrap()],
                body,
                "msg_1",
                1_700_000_000
            ),
            Ok("v1")
        );
        // Another key, a changed body or id, a stale timestamp: refused.
        let (_, other) = keygen().unwrap();
        let other = [Key::parse(&other).unwrap()];
        assert_eq!(
            v(&other, body, "msg_1", 1_700_000_000),
            Err(WebhookError::NoMatch)
        );
        let pk = [Key::parse(&pk).unwrap()];
        assert_eq!(
            v(&pk, b"{\"type\":\"y\"}", "msg_1", 1_700_000_000),
            Err(WebhookError::NoMatch)
        );
        assert_eq!(
            v(&pk, body, "msg_2", 1_700_000_000),
            Err(WebhookError::NoMatch)
        );
        assert_eq!(
            v(&pk, body, "msg_1", 1_700_000_301),
            Err(WebhookError::Stale(301))
        );
        assert_eq!(
            verify(&pk, None, Some("1"), Some(&sig), body, 1, 300),
            Err(WebhookError::MissingHeader("webhook-id"))
        );
    }

    #[test]
    fn keys_read_and_refuse() {
        let (sk, pk) = keygen().unwrap();
        let k = Key::parse(&sk).unwrap();
        assert_eq!(k.public().as_deref(), Some(pk.as_str()));
        assert!(
            !format!("{k:?}").contains(&sk[5..]),
            "the secret is never printed"
        );
        // The 64-byte form (seed and public key) reads as the same key.
        let mut long = B64.decode(&sk[5..]).unwrap();
        long.extend(B64.decode(&pk[5..]).unwrap());
        let k64 = Key::parse(&format!("whsk_{}", B64.encode(&long))).unwrap();
        assert_eq!(k64.public().as_deref(), Some(pk.as_str()));
        long[40] ^= 1;
        assert!(Key::parse(&format!("whsk_{}", B64.encode(&long))).is_err());
        for bad in [
            "whsk_short",
            "whpk_AAAA",
            "whsec_c2hvcnQ=",
            "secret",
            "whsk_!!!",
        ] {
            assert!(Key::parse(bad).is_err(), "{bad}");
        }
        // Unpadded base64 is fine (as the spec's libraries write it).
        assert!(Key::parse(pk.trim_end_matches('=')).is_ok());
    }

    proptest! {
        /// Whatever a request carries, checking it answers and never panics.
        #[test]
        fn verify_never_panics(
            id in ".{0,20}", ts in ".{0,12}", sig in ".{0,200}",
            body in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            let keys = [Key::parse(&new_secret().unwrap()).unwrap()];
            let _ = verify(&keys, Some(&id), Some(&ts), Some(&sig), &body, 0, 300);
        }

        /// Keys that are not keys are refused, never a panic.
        #[test]
        fn key_parsing_never_panics(text in "(whsk_|whpk_|whsec_)?[A-Za-z0-9+/=!]{0,100}") {
            let _ = Key::parse(&text);
        }
    }
}
