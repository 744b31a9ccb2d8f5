//! Extra request headers given with `-H 'Name: value'`, checked before any request is made so that a
//! typo is a usage error, not a confusing answer from the server.

use ureq::http::header::{HeaderName, HeaderValue};

use super::error::{FailureKind, FetchError};

/// One `-H 'Name: value'`.
pub(super) fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), FetchError> {
    let bad = |why: String| {
        FetchError::new(
            FailureKind::Usage,
            format!("invalid header '{text}': {why}; expected -H 'Name: value'"),
        )
    };
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("no ':' after the name".to_string()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad(format!("'{}' is not a valid header name", name.trim())))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| bad("the value contains control characters".to_string()))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_validated() {
        assert!(parse_header("X-Test: yes").is_ok());
        assert!(parse_header("X-Empty:").is_ok());
        for bad in ["no colon", "Bad Name: x", ": x", "X: a\r\nInjected: 1"] {
            let err = parse_header(bad).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::Usage, "{bad}");
        }
    }
}
