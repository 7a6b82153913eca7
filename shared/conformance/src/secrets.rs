//! The secrets contract. Each adapter's setup stores, for team `payments`, the PagerDuty signing secrets
//! `sig-old` and `sig-new` (a rotation), and nothing for team `nobody`.
#![allow(clippy::unwrap_used)]

use domain::TeamId;
use domain::ports::{Secrets, SecretsError};

pub const TEAM: &str = "payments";
pub const SIGNING: [&str; 2] = ["sig-old", "sig-new"];
pub const MISSING_TEAM: &str = "nobody";

pub async fn rotation_returns_every_secret(s: &impl Secrets) {
    let got = s.pagerduty_signing_secrets(&TeamId::parse(TEAM).unwrap()).await.unwrap();
    let values: Vec<&str> = got.iter().map(|x| x.expose()).collect();
    assert_eq!(values, SIGNING);
    // Twice: a cached read answers the same.
    let again = s.pagerduty_signing_secrets(&TeamId::parse(TEAM).unwrap()).await.unwrap();
    assert_eq!(got, again);
    assert!(!format!("{got:?}").contains("sig-"), "secrets never show in Debug output");
}

pub async fn a_team_without_secrets_is_missing(s: &impl Secrets) {
    let err = s.pagerduty_signing_secrets(&TeamId::parse(MISSING_TEAM).unwrap()).await.unwrap_err();
    assert!(matches!(err, SecretsError::Missing(_)), "{err}");
}

/// Runs the secrets suite for one adapter; `$make` yields an adapter set up as the module docs say.
#[macro_export]
macro_rules! secrets_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn rotation() { $crate::secrets::rotation_returns_every_secret(&$make).await }
                #[tokio::test]
                async fn missing() { $crate::secrets::a_team_without_secrets_is_missing(&$make).await }
            }
        )*
    };
}
