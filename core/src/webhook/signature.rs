//! The webhook signature: Stripe's scheme with our header names. A delivery carries
//! `llmledger-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`; the receiver
//! recomputes the HMAC over the raw bytes it received, compares in constant time and rejects a
//! timestamp outside its tolerance (a replayed request). The timestamp is signed at each attempt, so
//! a retry hours later still verifies.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The signature header: `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "llmledger-signature";
/// The delivery id header: one id per (alert, endpoint), the same on every attempt; receivers dedupe on it.
pub const DELIVERY_ID_HEADER: &str = "llmledger-delivery-id";
/// The alert id header ([`crate::alert::AlertEvent::alert_id`]).
pub const ALERT_ID_HEADER: &str = "llmledger-alert-id";

type HmacSha256 = hmac::Hmac<Sha256>;

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Result<HmacSha256> {
    // HMAC accepts a key of any length; the error exists only for fixed-size-key MACs.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|_| Error::invalid_value("secret", "(redacted)", "not usable as an HMAC key"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let digest = mac(secret, timestamp, body)?.finalize().into_bytes();
    Ok(format!("t={timestamp},v1={}", to_hex(&digest)))
}

/// Checks a received [`SIGNATURE_HEADER`] value against the raw `body`: `Ok` when one of its `v1`
/// signatures (several are allowed, as during a secret rotation) is the HMAC of `"<t>.<body>"` under
/// `secret` and `t` is within `tolerance` of `now` (unix seconds). Otherwise an
/// [`crate::ErrorCode::InvalidValue`] error naming the header; the signature itself is never echoed.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> Result<()> {
    let bad = |value: &str, reason: &str| Error::invalid_value(SIGNATURE_HEADER, value, reason);
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| bad(t, "`t` is not a unix timestamp"))?),
            Some(("v1", hex)) => signatures.push(hex),
            // Other schemes (a future `v2`) are ignored, as Stripe's verifiers do.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| bad("(no t)", "the header has no `t=` timestamp"))?;
    if signatures.is_empty() {
        return Err(bad("(no v1)", "the header has no `v1=` signature"));
    }
    let age = now.abs_diff(timestamp);
    if age > tolerance.as_secs() {
        return Err(bad(&format!("t={timestamp}"), &format!("timestamp is {age} s from now, beyond the tolerance")));
    }
    let expected = mac(secret, timestamp, body)?;
    let matches = signatures.iter().filter_map(|s| from_hex(s)).any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if matches {
        Ok(())
    } else {
        Err(bad(&format!("t={timestamp}"), "no `v1` signature matches the body and secret"))
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const SECRET: &str = "whsec_llmledger_test";
    const BODY: &[u8] = br#"{"alert_id":"a1","amount":"4.00"}"#;
    /// `python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_llmledger_test",
    /// b"1764633600.{\"alert_id\":\"a1\",\"amount\":\"4.00\"}", hashlib.sha256).hexdigest())'`
    const EXPECTED: &str = "82c948397746bb6bde749d0c1dc5a474e79b7d36ee50a4297a8033155c03e722";
    const T: i64 = 1_764_633_600;
    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn header_matches_an_independently_computed_hmac() {
        assert_eq!(signature_header(SECRET, T, BODY), Ok(format!("t={T},v1={EXPECTED}")));
    }

    #[test]
    fn verifies_the_hand_computed_header_within_tolerance() {
        let header = format!("t={T},v1={EXPECTED}");
        assert_eq!(verify_signature(SECRET, &header, BODY, T + 300, FIVE_MIN), Ok(()));
        assert_eq!(verify_signature(SECRET, &header, BODY, T - 300, FIVE_MIN), Ok(()));
        // Spaces after commas and an unknown scheme are tolerated; one matching v1 among several suffices.
        let rotated = format!("t={T}, v1={}, v0=abc, v1={EXPECTED}", "00".repeat(32));
        assert_eq!(verify_signature(SECRET, &rotated, BODY, T, FIVE_MIN), Ok(()));
    }

    #[test]
    fn rejects_tampering_replays_and_malformed_headers() {
        let header = format!("t={T},v1={EXPECTED}");
        let code =
            |r: Result<()>| r.map_err(|e| (e.code(), e.field().map(str::to_string), e.value().map(str::to_string)));
        let field = Some(SIGNATURE_HEADER.to_string());
        let tampered = br#"{"alert_id":"a1","amount":"5.00"}"#;
        assert_eq!(
            code(verify_signature(SECRET, &header, tampered, T, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field.clone(), Some(format!("t={T}"))))
        );
        assert_eq!(
            code(verify_signature("whsec_other", &header, BODY, T, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field.clone(), Some(format!("t={T}"))))
        );
        assert_eq!(
            code(verify_signature(SECRET, &header, BODY, T + 301, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field.clone(), Some(format!("t={T}"))))
        );
        assert_eq!(
            code(verify_signature(SECRET, &format!("v1={EXPECTED}"), BODY, T, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field.clone(), Some("(no t)".into())))
        );
        assert_eq!(
            code(verify_signature(SECRET, &format!("t={T}"), BODY, T, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field.clone(), Some("(no v1)".into())))
        );
        assert_eq!(
            code(verify_signature(SECRET, &format!("t=soon,v1={EXPECTED}"), BODY, T, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field.clone(), Some("soon".into())))
        );
        // A truncated or non-hex signature is just a non-match.
        assert_eq!(
            code(verify_signature(SECRET, &format!("t={T},v1={}", &EXPECTED[..63]), BODY, T, FIVE_MIN)),
            Err((ErrorCode::InvalidValue, field, Some(format!("t={T}"))))
        );
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(from_hex("000fA5ff"), Some(vec![0x00, 0x0f, 0xa5, 0xff]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
