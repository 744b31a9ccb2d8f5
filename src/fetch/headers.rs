//! Extra request headers given with `-H 'Name: value'`, checked before any request is made so that a
//! typo is a usage error, not a confusing answer from the server.

use super::error::{FailureKind, FetchError};

/// A request header, checked: a token for a name (RFC 9110), a value without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub(super) name: String,
    pub(super) value: String,
}

impl Header {
    /// True when this header is `name` (header names are case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// `Name: value`, as it goes on the wire.
    pub fn line(&self) -> String {
        format!("{}: {}", self.name, self.value)
    }
}

/// One `-H 'Name: value'`.
pub fn parse_header(text: &str) -> Result<Header, FetchError> {
    let bad = |why: String| {
        FetchError::new(
            FailureKind::Usage,
            format!("invalid header '{text}': {why}; expected -H 'Name: value'"),
        )
    };
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("no ':' after the name".to_string()))?;
    let name = name.trim();
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(bad(format!("'{name}' is not a valid header name")));
    }
    let value = value.trim();
    if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err(bad("the value contains control characters".to_string()));
    }
    Ok(Header {
        name: name.to_string(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_validated() {
        assert!(parse_header("X-Test: yes").is_ok());
        assert!(parse_header("X-Empty:").is_ok());
        let h = parse_header("  X-Test :  yes please ").unwrap();
        assert_eq!(h.line(), "X-Test: yes please");
        assert!(h.is("x-test"));
        for bad in ["no colon", "Bad Name: x", ": x", "X: a\r\nInjected: 1"] {
            let err = parse_header(bad).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::Usage, "{bad}");
        }
    }
}
