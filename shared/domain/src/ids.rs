//! Identifiers. Each is a validated newtype so a team id can never be passed where an incident id is meant.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id with the type's prefix.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "{}"), uuid::Uuid::new_v4().simple()))
            }

            /// Wraps an existing id (read back from storage or a message).
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// One incident, across every stage.
    IncidentId,
    "inc_"
);
string_id!(
    /// Ties every log line, message and audit event of one alert's handling together.
    CorrelationId,
    "cor_"
);
string_id!(
    /// One planned action; the idempotency key of its execution.
    ActionId,
    "act_"
);

/// A tenant. Lower-case letters, digits and `-`, 1 to 63 characters: it appears in URLs and storage keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamId(String);

/// The team id given in a URL or message is not a valid team id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid team id {0:?}: use 1-63 lower-case letters, digits or '-'")]
pub struct InvalidTeamId(pub String);

impl TeamId {
    /// The team used by routes that name none.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(s: &str) -> Result<Self, InvalidTeamId> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidTeamId(s.to_owned())) }
    }

    pub fn default_team() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl schemars::JsonSchema for TeamId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TeamId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            "description": "1-63 lower-case letters, digits or '-', not starting or ending with '-'"
        })
    }
}

impl TryFrom<String> for TeamId {
    type Error = InvalidTeamId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TeamId> for String {
    fn from(t: TeamId) -> String {
        t.0
    }
}

impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_ids_are_validated() {
        for good in ["default", "payments", "team-7", "a"] {
            assert!(TeamId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Team", "-x", "x-", "a/b", "a b", &"x".repeat(64)] {
            assert!(TeamId::parse(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<TeamId>("\"Bad\"").unwrap_err();
        assert!(err.to_string().contains("invalid team id"));
    }

    #[test]
    fn generated_ids_are_unique_and_prefixed() {
        let a = IncidentId::generate();
        let b = IncidentId::generate();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("inc_"));
        assert!(ActionId::generate().as_str().starts_with("act_"));
    }
}
