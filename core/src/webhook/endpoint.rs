//! A webhook endpoint: where alerts are sent and the secret they are signed with. Both are the
//! user's secrets (a URL often carries a token), so neither appears in `Debug`, errors or the outbox:
//! rows name an endpoint by [`WebhookEndpoint::key`], a hash of its URL.

use std::fmt;

use sha2::{Digest, Sha256};

use super::signature::to_hex;
use crate::error::{Error, Result};

/// One endpoint. Build it with [`WebhookEndpoint::new`].
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    url: reqwest::Url,
    secret: String,
    key: String,
}

impl WebhookEndpoint {
    /// An endpoint at `url` (http or https, with a host) signing with `secret` (not empty). A bad URL is
    /// an [`crate::ErrorCode::InvalidValue`] error naming `url` whose value is only the scheme, never the
    /// URL; an empty secret names `secret`.
    pub fn new(url: &str, secret: &str) -> Result<Self> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| Error::invalid_value("url", "(redacted)", &format!("not an absolute http(s) URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            let scheme = format!("{}:", parsed.scheme());
            return Err(Error::invalid_value("url", scheme, "webhooks are sent over http:// or https:// only"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid_value("url", "(redacted)", "the URL has no host"));
        }
        if secret.is_empty() {
            return Err(Error::invalid_value("secret", "(empty)", "a signing secret is required"));
        }
        let key = to_hex(&Sha256::digest(parsed.as_str().as_bytes())[..16]);
        Ok(Self { url: parsed, secret: secret.to_string(), key })
    }

    /// The endpoint's name in the outbox: the first 16 bytes of SHA-256 of the normalized URL, in hex.
    /// Safe to log; the same URL always gives the same key, across processes and restarts.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

/// An endpoint as configuration gives it (`{"url": …, "secret": …}`, the bindings' `webhooks` list),
/// not yet validated: [`WebhookSpec::endpoint`] checks it. `Debug` shows neither value.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: String,
    pub secret: String,
}

impl WebhookSpec {
    /// The validated endpoint (see [`WebhookEndpoint::new`]).
    pub fn endpoint(&self) -> Result<WebhookEndpoint> {
        WebhookEndpoint::new(&self.url, &self.secret)
    }
}

impl fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSpec").field("url", &"<redacted>").field("secret", &"<redacted>").finish()
    }
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("key", &self.key)
            .field("url", &"<redacted>")
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn accepts_http_and_https_and_keys_by_url_hash() {
        let e = WebhookEndpoint::new("https://hooks.example.com/llm", "s3cret").unwrap();
        // `python3 -c 'import hashlib; print(hashlib.sha256(b"https://hooks.example.com/llm").hexdigest()[:32])'`
        assert_eq!(e.key(), "2098789c2ea3bcbb63d655ed545cdae9");
        let plain = WebhookEndpoint::new("http://127.0.0.1:8080/hook", "s3cret").unwrap();
        assert_eq!(plain.url().as_str(), "http://127.0.0.1:8080/hook");
    }

    #[test]
    fn other_schemes_and_empty_secrets_are_typed_errors_without_the_url() {
        let err = |url: &str, secret: &str| {
            let e = WebhookEndpoint::new(url, secret).unwrap_err();
            (e.code(), e.field().unwrap().to_string(), e.value().unwrap().to_string(), e.to_string())
        };
        let (code, field, value, text) = err("ftp://user:tok3n@files.example.com/x", "s");
        assert_eq!((code, field.as_str(), value.as_str()), (ErrorCode::InvalidValue, "url", "ftp:"));
        assert!(!text.contains("tok3n") && !text.contains("files.example.com"), "{text}");
        let (code, field, value, _) = err("not a url", "s");
        assert_eq!((code, field.as_str(), value.as_str()), (ErrorCode::InvalidValue, "url", "(redacted)"));
        let (code, field, value, _) = err("https://hooks.example.com/x", "");
        assert_eq!((code, field.as_str(), value.as_str()), (ErrorCode::InvalidValue, "secret", "(empty)"));
    }

    #[test]
    fn debug_shows_the_key_but_neither_url_nor_secret() {
        let e = WebhookEndpoint::new("https://hooks.example.com/T0K3N", "whsec_abc").unwrap();
        let shown = format!("{e:?}");
        assert!(shown.contains(e.key()), "{shown}");
        assert!(!shown.contains("T0K3N") && !shown.contains("whsec_abc") && !shown.contains("example"), "{shown}");
    }
}
