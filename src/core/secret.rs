//! [`Secret`]: a credential (signing secret, bearer password, channel secret) whose `Debug` and
//! `Display` never show the value. The value is reached only through [`Secret::expose`], so
//! every place that uses it in clear is one grep away.

use serde::{Deserialize, Serialize};

/// A credential. Stored and serialized as its plain string (the on-disk format of the fields
/// that hold one is unchanged); shown as `Secret(***)` everywhere else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value in clear: for signing, an `Authorization` header, or sealing — never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (for validation messages, which never show the value).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shown_in_debug_or_display() {
        let s = Secret::new("hunter2-value");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2-value");
    }

    #[test]
    fn stored_exactly_like_the_plain_string() {
        let plain = postcard::to_stdvec(&Some("k3y".to_string())).unwrap();
        let wrapped = postcard::to_stdvec(&Some(Secret::new("k3y"))).unwrap();
        assert_eq!(plain, wrapped, "the on-disk format must not change");
        let back: Option<Secret> = postcard::from_bytes(&plain).unwrap();
        assert_eq!(back.unwrap().expose(), "k3y");
        assert_eq!(serde_json::to_string(&Secret::new("x")).unwrap(), "\"x\"");
    }
}
