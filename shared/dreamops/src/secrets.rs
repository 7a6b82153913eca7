//! The local secrets store of `dreamops serve`: the credentials written through the integrations API, in one file
//! only its owner can read (`<data dir>/secrets.json`, mode 0600), sealed with ChaCha20-Poly1305 when
//! `DREAMOPS_SECRETS_KEY` holds a 32-byte key (base64). Values from the config file and the environment stay a
//! read-only layer above it: they win, and the API cannot change them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine;
use domain::TeamId;
use domain::ports::{Secret, SecretName, Secrets, SecretsAdmin, SecretsError};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::adapters::ConfigSecrets;

/// Environment variable holding the key that seals the local secrets file (32 bytes, base64).
pub const DREAMOPS_SECRETS_KEY: &str = "DREAMOPS_SECRETS_KEY";

/// Team → secret key → values.
type Values = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The file, as written: plain (`teams`) or sealed (`nonce` + `sealed`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    teams: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

/// Why the secrets file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileSecretsError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} is not a DreamOps secrets file: {1}")]
    Format(PathBuf, String),
    #[error("{0} is sealed: set {DREAMOPS_SECRETS_KEY} to the key it was written with")]
    NeedsKey(PathBuf),
    #[error("{0} cannot be opened with the key in {DREAMOPS_SECRETS_KEY} (wrong key, or the file was altered)")]
    WrongKey(PathBuf),
    #[error("{DREAMOPS_SECRETS_KEY} must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
}

/// The sealing key from `DREAMOPS_SECRETS_KEY`, if set.
pub fn key_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<[u8; 32]>, FileSecretsError> {
    let Some(v) = env(DREAMOPS_SECRETS_KEY).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(v.trim()).map_err(|_| FileSecretsError::BadKey)?;
    bytes.try_into().map(Some).map_err(|_| FileSecretsError::BadKey)
}

/// The secrets written through the API, in a file.
pub struct FileSecrets {
    path: PathBuf,
    key: Option<[u8; 32]>,
    values: Mutex<Values>,
}

impl std::fmt::Debug for FileSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSecrets").field("path", &self.path).field("sealed", &self.key.is_some()).finish()
    }
}

fn aead(key: &[u8; 32]) -> Result<LessSafeKey, FileSecretsError> {
    Ok(LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| FileSecretsError::BadKey)?))
}

impl FileSecrets {
    /// Opens (or starts) the file at `path`. A sealed file needs its key; a plain one is sealed on its next
    /// write once a key is given.
    pub fn open(path: &Path, key: Option<[u8; 32]>) -> Result<Self, FileSecretsError> {
        let values = match std::fs::read(path) {
            Ok(bytes) => Self::decode(path, &bytes, key.as_ref())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Values::new(),
            Err(e) => return Err(FileSecretsError::Io(path.to_owned(), e)),
        };
        Ok(Self { path: path.to_owned(), key, values: Mutex::new(values) })
    }

    fn decode(path: &Path, bytes: &[u8], key: Option<&[u8; 32]>) -> Result<Values, FileSecretsError> {
        let fmt = |m: String| FileSecretsError::Format(path.to_owned(), m);
        let doc: FileDoc = serde_json::from_slice(bytes).map_err(|e| fmt(e.to_string()))?;
        if doc.v != 1 {
            return Err(fmt(format!("version {} is not 1", doc.v)));
        }
        match (doc.teams, doc.nonce, doc.sealed) {
            (Some(t), None, None) => Ok(t),
            (None, Some(nonce), Some(sealed)) => {
                let key = key.ok_or_else(|| FileSecretsError::NeedsKey(path.to_owned()))?;
                let b64 = base64::engine::general_purpose::STANDARD;
                let nonce: [u8; NONCE_LEN] =
                    b64.decode(nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(|| fmt("bad nonce".into()))?;
                let mut data = b64.decode(sealed).map_err(|_| fmt("bad sealed data".into()))?;
                let plain = aead(key)?
                    .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(b"dreamops-secrets-v1"), &mut data)
                    .map_err(|_| FileSecretsError::WrongKey(path.to_owned()))?;
                serde_json::from_slice(plain).map_err(|e| fmt(e.to_string()))
            }
            _ => Err(fmt("expected either `teams` or `nonce` and `sealed`".into())),
        }
    }

    fn encode(&self, values: &Values) -> Result<Vec<u8>, SecretsError> {
        let unavailable = |m: &str| SecretsError::Unavailable(format!("{}: {m}", self.path.display()));
        let doc = match &self.key {
            None => FileDoc { v: 1, teams: Some(values.clone()), ..Default::default() },
            Some(key) => {
                let mut nonce = [0u8; NONCE_LEN];
                SystemRandom::new().fill(&mut nonce).map_err(|_| unavailable("no randomness for a nonce"))?;
                let mut data = serde_json::to_vec(values).map_err(|_| unavailable("cannot encode"))?;
                aead(key)
                    .map_err(|_| unavailable("bad key"))?
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(b"dreamops-secrets-v1"),
                        &mut data,
                    )
                    .map_err(|_| unavailable("cannot seal"))?;
                let b64 = base64::engine::general_purpose::STANDARD;
                FileDoc { v: 1, teams: None, nonce: Some(b64.encode(nonce)), sealed: Some(b64.encode(data)) }
            }
        };
        serde_json::to_vec_pretty(&doc).map_err(|_| unavailable("cannot encode"))
    }

    /// Writes the whole file atomically (a temporary file beside it, then a rename), readable by its owner only.
    fn persist(&self, values: &Values) -> Result<(), SecretsError> {
        let io = |e: std::io::Error| SecretsError::Unavailable(format!("{}: {e}", self.path.display()));
        let bytes = self.encode(values)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Values> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Secrets for FileSecrets {
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.lock()
            .get(team.as_str())
            .and_then(|t| t.get(name.key()))
            .filter(|v| !v.is_empty())
            .map(|v| v.iter().map(Secret::new).collect())
            .ok_or_else(|| SecretsError::Missing(format!("{} of team {team}", name.key())))
    }

    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        Err(SecretsError::Missing(format!("{} of the deployment", name.key())))
    }
}

#[async_trait]
impl SecretsAdmin for FileSecrets {
    async fn update_team_secrets(
        &self,
        team: &TeamId,
        changes: &[(SecretName, Option<Vec<Secret>>)],
    ) -> Result<(), SecretsError> {
        // One writer at a time holds the lock across the file write, so no change is ever lost.
        let mut values = self.lock();
        let mut next = values.clone();
        let entry = next.entry(team.to_string()).or_default();
        for (name, v) in changes {
            match v {
                Some(v) if !v.is_empty() => {
                    entry.insert(name.key().to_owned(), v.iter().map(|s| s.expose().to_owned()).collect());
                }
                _ => {
                    entry.remove(name.key());
                }
            }
        }
        if entry.is_empty() {
            next.remove(team.as_str());
        }
        self.persist(&next)?;
        *values = next;
        Ok(())
    }
}

/// The secrets `serve` reads: the config file's and the environment's first (read-only), then the file's.
#[derive(Debug)]
pub struct LayeredSecrets {
    pub config: ConfigSecrets,
    pub file: FileSecrets,
}

#[async_trait]
impl Secrets for LayeredSecrets {
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        match self.config.team_secret(team, name).await {
            Err(SecretsError::Missing(_)) => self.file.team_secret(team, name).await,
            other => other,
        }
    }

    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.config.deployment_secret(name).await
    }
}

#[async_trait]
impl SecretsAdmin for LayeredSecrets {
    async fn update_team_secrets(
        &self,
        team: &TeamId,
        changes: &[(SecretName, Option<Vec<Secret>>)],
    ) -> Result<(), SecretsError> {
        for (name, _) in changes {
            if self.config.team_secret(team, *name).await.is_ok() {
                return Err(SecretsError::ReadOnly(format!("{} of team {team}", name.key())));
            }
        }
        self.file.update_team_secrets(team, changes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> [u8; 32] {
        [7u8; 32]
    }

    fn empty(dir: &Path, key: Option<[u8; 32]>) -> FileSecrets {
        FileSecrets::open(&dir.join("secrets.json"), key).unwrap()
    }

    conformance::secrets_write_suite!(
        plain_file => empty(tempfile::tempdir().unwrap().keep().as_path(), None),
        sealed_file => empty(tempfile::tempdir().unwrap().keep().as_path(), Some(key())),
    );

    #[tokio::test]
    async fn a_sealed_file_holds_no_value_in_clear_and_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let team = TeamId::parse("payments").unwrap();
        let s = FileSecrets::open(&path, Some(key())).unwrap();
        s.update_team_secrets(&team, &[(SecretName::PagerDutyApiToken, Some(vec![Secret::new("pd-super-secret")]))])
            .await
            .unwrap();
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(!raw.contains("pd-super-secret") && !raw.contains("payments"), "{raw}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let back = FileSecrets::open(&path, Some(key())).unwrap();
        assert_eq!(back.credential(&team, SecretName::PagerDutyApiToken).await.unwrap().expose(), "pd-super-secret");
        assert!(matches!(FileSecrets::open(&path, None), Err(FileSecretsError::NeedsKey(_))));
        assert!(matches!(FileSecrets::open(&path, Some([8u8; 32])), Err(FileSecretsError::WrongKey(_))));
        std::fs::write(&path, raw.replace("\"v\": 1", "\"v\": 9")).unwrap();
        assert!(matches!(FileSecrets::open(&path, Some(key())), Err(FileSecretsError::Format(..))));
    }

    #[test]
    fn the_key_is_32_bytes_of_base64() {
        let good = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert_eq!(key_from_env(|_| Some(good.clone())).unwrap(), Some([1u8; 32]));
        assert!(key_from_env(|_| None).unwrap().is_none());
        assert!(matches!(key_from_env(|_| Some("c2hvcnQ=".into())), Err(FileSecretsError::BadKey)));
        assert!(matches!(key_from_env(|_| Some("%%%".into())), Err(FileSecretsError::BadKey)));
    }

    #[tokio::test]
    async fn config_values_win_and_are_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let team = TeamId::parse("default").unwrap();
        let layered =
            LayeredSecrets { config: ConfigSecrets::single(team.clone(), "from-env"), file: empty(dir.path(), None) };
        let err = layered
            .update_team_secrets(&team, &[(SecretName::PagerDutyWebhookSecrets, Some(vec![Secret::new("x")]))])
            .await
            .unwrap_err();
        assert!(matches!(err, SecretsError::ReadOnly(_)), "{err}");
        layered
            .update_team_secrets(&team, &[(SecretName::SlackWebhookUrl, Some(vec![Secret::new("https://h/x")]))])
            .await
            .unwrap();
        assert_eq!(layered.pagerduty_signing_secrets(&team).await.unwrap()[0].expose(), "from-env");
        assert_eq!(layered.credential(&team, SecretName::SlackWebhookUrl).await.unwrap().expose(), "https://h/x");
    }
}
