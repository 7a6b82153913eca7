//! What arrives from a team's Slack app: signed interaction payloads (button clicks) and slash commands.
//!
//! Slack signs every request: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + timestamp + ":" +
//! raw body)>` with `X-Slack-Request-Timestamp` in Unix seconds. The signature is checked over the raw bytes
//! before anything is parsed, in constant time, against every signing secret the team holds (rotation), and a
//! timestamp more than five minutes from now is refused, so a captured request cannot be replayed later. A
//! valid signature says who sent it, not that it is new: interactions are deduplicated on their action
//! (`trigger_id` and `action_ts`) by the caller. Behind API Gateway (payload 2.0) form bodies arrive
//! base64-encoded: [`raw_body`] undoes that first.
//!
//! This module is transport-free; the webhook routes (serve and the api function) wire it.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// How far a request's timestamp may be from now.
pub const WINDOW_SECS: i64 = 300;

/// Why a request is not accepted as Slack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Missing,
    #[error("the request timestamp is not within five minutes of now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// HMAC-SHA256 of `v0:<timestamp>:<body>` under `secret`.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return Vec::new() };
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// `v0=<hex>` for `body` sent at `timestamp` (what Slack computes; the protocol fake signs with it).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

/// Checks a request's signature against each of `secrets`, at `now` (Unix seconds).
pub fn verify(
    secrets: &[&str],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else { return Err(SignatureError::Missing) };
    let ts: i64 = ts.trim().parse().map_err(|_| SignatureError::Stale)?;
    if (now - ts).abs() > WINDOW_SECS {
        return Err(SignatureError::Stale);
    }
    let Some(given) = sig.trim().strip_prefix("v0=").and_then(|h| hex::decode(h).ok()).filter(|g| g.len() == 32) else {
        return Err(SignatureError::Mismatch);
    };
    let mut ok = false;
    for secret in secrets {
        ok |= bool::from(mac(secret, ts, body).as_slice().ct_eq(given.as_slice()));
    }
    if ok { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The bytes Slack signed: API Gateway hands form bodies over base64-encoded.
pub fn raw_body(body: &[u8], is_base64: bool) -> Result<Vec<u8>, String> {
    if !is_base64 {
        return Ok(body.to_vec());
    }
    base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| format!("the body is not base64: {e}"))
}

fn form(body: &[u8]) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// One button of a message that was clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub action_id: String,
    pub block_id: String,
    pub value: String,
    pub action_ts: String,
}

/// A `block_actions` interaction: who clicked what, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub user_id: String,
    /// The user's Slack username, for the audit trail (not an identity: `user_id` is).
    pub user_name: Option<String>,
    pub slack_team: Option<String>,
    pub trigger_id: String,
    pub response_url: Option<String>,
    pub channel_id: Option<String>,
    pub message_ts: Option<String>,
    pub clicks: Vec<Click>,
}

impl Interaction {
    /// The key a click is deduplicated on (Slack retries a request it saw no answer to within 3 s).
    pub fn dedupe_key(&self, click: &Click) -> String {
        format!("slack:{}:{}:{}", self.trigger_id, click.action_id, click.action_ts)
    }
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    user: RawUser,
    #[serde(default)]
    team: Option<RawId>,
    #[serde(default)]
    trigger_id: String,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    channel: Option<RawId>,
    #[serde(default)]
    container: Option<RawContainer>,
    #[serde(default)]
    message: Option<RawMessage>,
    #[serde(default)]
    actions: Vec<RawAction>,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawContainer {
    #[serde(default)]
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    ts: Option<String>,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    #[serde(default)]
    block_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: String,
}

/// Reads an interaction request's body (`payload=<url-encoded JSON>`). Only `block_actions` is accepted;
/// unknown fields are tolerated.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, String> {
    let fields = form(body);
    let payload = fields.get("payload").ok_or("no payload field")?;
    let raw: RawInteraction = serde_json::from_str(payload).map_err(|e| format!("payload: {e}"))?;
    if raw.kind != "block_actions" {
        return Err(format!("interaction type {:?} is not handled", raw.kind));
    }
    if raw.trigger_id.is_empty() || raw.actions.is_empty() {
        return Err("no trigger_id or no action".into());
    }
    Ok(Interaction {
        user_name: raw.user.username.or(raw.user.name),
        user_id: raw.user.id,
        slack_team: raw.team.map(|t| t.id),
        trigger_id: raw.trigger_id,
        response_url: raw.response_url,
        channel_id: raw.channel.map(|c| c.id),
        message_ts: raw.container.and_then(|c| c.message_ts).or(raw.message.and_then(|m| m.ts)),
        clicks: raw
            .actions
            .into_iter()
            .map(|a| Click {
                action_id: a.action_id,
                block_id: a.block_id,
                value: a.value.unwrap_or_default(),
                action_ts: a.action_ts,
            })
            .collect(),
    })
}

/// The reason typed into the Reject modal (`view_submission` of `dreamops_reject_reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectReason {
    pub user_id: String,
    pub user_name: Option<String>,
    /// The modal's id: a retried submission carries the same one.
    pub view_id: String,
    pub incident: String,
    pub reason: String,
}

/// An interaction the app handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Actions(Interaction),
    Reject(RejectReason),
}

/// The callback id of the Reject modal.
pub const REJECT_VIEW: &str = "dreamops_reject_reason";

/// Reads an interaction request: button clicks, or the Reject modal's submission.
pub fn parse_payload(body: &[u8]) -> Result<Payload, String> {
    let fields = form(body);
    let payload = fields.get("payload").ok_or("no payload field")?;
    let v: serde_json::Value = serde_json::from_str(payload).map_err(|e| format!("payload: {e}"))?;
    if v["type"] != "view_submission" {
        return parse_interaction(body).map(Payload::Actions);
    }
    let view = &v["view"];
    if view["callback_id"] != REJECT_VIEW {
        return Err(format!("view {:?} is not handled", view["callback_id"]));
    }
    let user_id = v["user"]["id"].as_str().filter(|u| !u.is_empty()).ok_or("no user")?.to_owned();
    let view_id = view["id"].as_str().filter(|u| !u.is_empty()).ok_or("no view id")?.to_owned();
    let incident = view["private_metadata"].as_str().unwrap_or_default().to_owned();
    if incident.is_empty() || incident.len() > 128 || !incident.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err("the modal names no incident".into());
    }
    let reason = view["state"]["values"]["reason"]["reason"]["value"].as_str().unwrap_or_default().trim().to_owned();
    let user_name = v["user"]["username"].as_str().or(v["user"]["name"].as_str()).map(str::to_owned);
    Ok(Payload::Reject(RejectReason { user_id, user_name, view_id, incident, reason }))
}

/// A slash command (`/dreamops restart checkout-api in shop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub user_id: String,
    /// Deprecated by Slack but still sent; for the audit trail only.
    pub user_name: Option<String>,
    pub slack_team: Option<String>,
    pub channel_id: Option<String>,
    pub command: String,
    pub text: String,
    pub response_url: Option<String>,
    pub trigger_id: Option<String>,
}

/// Reads a slash command's form body.
pub fn parse_command(body: &[u8]) -> Result<Command, String> {
    let mut f = form(body);
    let user_id = f.remove("user_id").filter(|u| !u.is_empty()).ok_or("no user_id")?;
    let command = f.remove("command").ok_or("no command")?;
    Ok(Command {
        user_id,
        user_name: f.remove("user_name").filter(|n| !n.is_empty()),
        slack_team: f.remove("team_id"),
        channel_id: f.remove("channel_id"),
        command,
        text: f.remove("text").unwrap_or_default(),
        response_url: f.remove("response_url"),
        trigger_id: f.remove("trigger_id"),
    })
}

/// What an approval button carries: the decision, the incident, and (to approve) the diff hash it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Button {
    Approve { incident: String, plan: String },
    Reject { incident: String },
}

impl Button {
    pub const APPROVE: &'static str = "dreamops_approve";
    pub const REJECT: &'static str = "dreamops_reject";

    /// `(action_id, value)` for the message.
    pub fn encode(&self) -> (&'static str, String) {
        match self {
            Self::Approve { incident, plan } => (Self::APPROVE, format!("{incident}:{plan}")),
            Self::Reject { incident } => (Self::REJECT, incident.clone()),
        }
    }

    /// A click back to a button; anything not made by [`Button::encode`] is `None`.
    pub fn decode(click: &Click) -> Option<Self> {
        let ok = |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match click.action_id.as_str() {
            Self::APPROVE => {
                let (incident, plan) = click.value.split_once(':')?;
                (ok(incident) && plan.len() == 64 && plan.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Self::Approve { incident: incident.into(), plan: plan.into() })
            }
            Self::REJECT => ok(&click.value).then(|| Self::Reject { incident: click.value.clone() }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example request (api.slack.com/authentication/verifying-requests-from-slack).
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TS: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        let now: i64 = DOC_TS.parse().unwrap();
        assert_eq!(sign(DOC_SECRET, now, DOC_BODY.as_bytes()), DOC_SIG);
        assert_eq!(verify(&[DOC_SECRET], Some(DOC_TS), Some(DOC_SIG), DOC_BODY.as_bytes(), now + 10), Ok(()));
        let cmd = parse_command(DOC_BODY.as_bytes()).unwrap();
        assert_eq!(
            (cmd.user_id.as_str(), cmd.command.as_str(), cmd.text.as_str()),
            ("U2CERLKJA", "/webhook-collect", "")
        );
    }

    #[test]
    fn forged_stale_and_missing_signatures_are_refused() {
        let now: i64 = DOC_TS.parse().unwrap();
        let body = DOC_BODY.as_bytes();
        assert_eq!(verify(&["wrong", DOC_SECRET], Some(DOC_TS), Some(DOC_SIG), body, now), Ok(()), "rotation");
        assert_eq!(verify(&["wrong"], Some(DOC_TS), Some(DOC_SIG), body, now), Err(SignatureError::Mismatch));
        let mut tampered = body.to_vec();
        tampered[0] ^= 1;
        assert_eq!(verify(&[DOC_SECRET], Some(DOC_TS), Some(DOC_SIG), &tampered, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(&[DOC_SECRET], Some(DOC_TS), Some(DOC_SIG), body, now + 301), Err(SignatureError::Stale));
        assert_eq!(verify(&[DOC_SECRET], Some(DOC_TS), Some(DOC_SIG), body, now - 301), Err(SignatureError::Stale));
        assert_eq!(verify(&[DOC_SECRET], None, Some(DOC_SIG), body, now), Err(SignatureError::Missing));
        assert_eq!(verify(&[DOC_SECRET], Some(DOC_TS), Some("v1=00"), body, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(&[DOC_SECRET], Some("soon"), Some(DOC_SIG), body, now), Err(SignatureError::Stale));
        // A signature for another timestamp does not carry over (replay with a fresh timestamp).
        let fresh = (now + 200).to_string();
        assert_eq!(verify(&[DOC_SECRET], Some(&fresh), Some(DOC_SIG), body, now + 200), Err(SignatureError::Mismatch));
    }

    #[test]
    fn api_gateway_bodies_are_decoded_before_the_signature() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(DOC_BODY);
        let raw = raw_body(b64.as_bytes(), true).unwrap();
        assert_eq!(raw, DOC_BODY.as_bytes());
        assert!(raw_body(b"%%%", true).is_err());
    }

    #[test]
    fn clicks_are_read_and_buttons_round_trip() {
        let hash = "ab".repeat(32);
        let (action_id, value) = Button::Approve { incident: "inc_1f2e".into(), plan: hash.clone() }.encode();
        let payload = serde_json::json!({
            "type": "block_actions", "user": {"id": "U1", "username": "asha"}, "team": {"id": "T1"},
            "trigger_id": "123.456.abc", "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "channel": {"id": "C1"}, "container": {"type": "message", "message_ts": "1700000000.0001"},
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value, "action_ts": "1700000001.1"}],
            "new_field": {"tolerated": true}
        });
        let body =
            format!("payload={}", form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>());
        let i = parse_interaction(body.as_bytes()).unwrap();
        assert_eq!((i.user_id.as_str(), i.message_ts.as_deref()), ("U1", Some("1700000000.0001")));
        assert_eq!(Button::decode(&i.clicks[0]), Some(Button::Approve { incident: "inc_1f2e".into(), plan: hash }));
        assert_eq!(i.dedupe_key(&i.clicks[0]), "slack:123.456.abc:dreamops_approve:1700000001.1");
        let forged = Click {
            action_id: Button::APPROVE.into(),
            block_id: String::new(),
            value: "inc_1:notahash".into(),
            action_ts: String::new(),
        };
        assert_eq!(Button::decode(&forged), None);
        let other = Click { action_id: "something_else".into(), ..forged };
        assert_eq!(Button::decode(&other), None);
        assert!(
            parse_interaction(b"payload=%7B%22type%22%3A%22view_closed%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D")
                .is_err()
        );
        assert!(parse_interaction(b"nothing=here").is_err());
    }
}
