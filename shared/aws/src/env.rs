//! Reading a function's configuration from its environment, once, at start: a missing or invalid variable is an
//! error that names it, so a bad deployment fails its first start instead of its first event.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

/// `true` meters every team's alerts against its plan (Terraform sets it; unset is unmetered).
pub const BILLING_ENABLED: &str = "DREAMOPS_BILLING_ENABLED";
/// The IANA zone whose calendar months are the Free plan's periods.
pub const BILLING_TIMEZONE: &str = "DREAMOPS_BILLING_TIMEZONE";
pub const DEFAULT_BILLING_TIMEZONE: &str = "Asia/Kolkata";

/// An environment to read from (`std::env::var` in the functions, a table in tests).
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> std::fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The variable's value; unset and blank are the same.
    pub fn optional(&self, key: &'static str) -> Option<String> {
        (self.0)(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, key: &'static str) -> Result<String, ConfigError> {
        self.optional(key).ok_or(ConfigError::Missing(key))
    }

    pub fn number(&self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid(key, format!("{v:?} is not a whole number"))),
        }
    }

    pub fn seconds(&self, key: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.number(key, default.as_secs()).map(Duration::from_secs)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), or `default` when unset.
    pub fn flag(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "1", "yes"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "0", "no"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ConfigError::Invalid(key, format!("{v:?} is neither true nor false"))),
        }
    }

    /// Whether alerts are metered and, if so, the billing time zone (an IANA name, default `Asia/Kolkata`).
    /// Validated here, so a bad zone fails the start.
    pub fn billing_timezone(&self) -> Result<Option<String>, ConfigError> {
        if !self.flag(BILLING_ENABLED, false)? {
            return Ok(None);
        }
        let zone = self.optional(BILLING_TIMEZONE).unwrap_or_else(|| DEFAULT_BILLING_TIMEZONE.to_owned());
        jiff::tz::TimeZone::get(&zone).map_err(|e| ConfigError::Invalid(BILLING_TIMEZONE, format!("{zone:?}: {e}")))?;
        Ok(Some(zone))
    }

    /// A JSON document, or `None` when unset.
    pub fn json<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, ConfigError> {
        self.optional(key)
            .map(|v| serde_json::from_str(&v).map_err(|e| ConfigError::Invalid(key, e.to_string())))
            .transpose()
    }
}

/// The process environment.
pub fn process() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|k: &str| std::env::var(k).ok())
}

/// A fixed table of variables (tests, tools).
pub fn table(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String> + use<>> {
    let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Env(move |k: &str| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}
