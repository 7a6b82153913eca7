//! A small Chrome DevTools Protocol client for browser tests: launches the system's Chromium headless (Debian's
//! `chromium`, or `$CHROME`), opens pages with a given viewport, evaluates script, clicks and types through real
//! input events, and takes screenshots. Everything the page reports — uncaught exceptions, console errors,
//! Content-Security-Policy and Trusted Types violations — is collected, so a test can assert that nothing went
//! wrong, not only that something showed.
//!
//! Every command has a timeout; the browser process and its profile directory go away with the [`Browser`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Chromium found: install Debian's `chromium` (or set CHROME to a Chromium binary)")]
    NotInstalled,
    #[error("starting Chromium: {0}")]
    Launch(String),
    #[error("DevTools connection: {0}")]
    Connection(String),
    #[error("{method}: {message}")]
    Protocol { method: String, message: String },
    #[error("the page threw: {0}")]
    Script(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<std::result::Result<Value, String>>>>>;
type Events = Arc<Mutex<HashMap<String, Vec<Value>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Chromium binary: `$CHROME`, else the first of the usual names on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(c) = std::env::var_os("CHROME").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(c);
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome-stable", "chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A running headless Chromium.
#[derive(Debug)]
pub struct Browser {
    child: tokio::process::Child,
    profile: PathBuf,
    conn: Connection,
}

#[derive(Debug, Clone)]
struct Connection {
    tx: mpsc::UnboundedSender<String>,
    pending: Pending,
    events: Events,
    next: Arc<AtomicU64>,
}

impl Connection {
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (done, answer) = oneshot::channel();
        lock(&self.pending).insert(id, done);
        self.tx.send(msg.to_string()).map_err(|_| Error::Connection("the browser connection is closed".into()))?;
        match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(Error::Timeout(format!("{method} took over {COMMAND_TIMEOUT:?}")))
            }
            Ok(Err(_)) => Err(Error::Connection("the browser connection closed".into())),
            Ok(Ok(Err(message))) => Err(Error::Protocol { method: method.into(), message }),
            Ok(Ok(Ok(v))) => Ok(v),
        }
    }
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and no background networking.
    pub async fn launch() -> Result<Self> {
        let bin = find_chromium().ok_or(Error::NotInstalled)?;
        let profile = std::env::temp_dir().join(format!(
            "dreamops-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        std::fs::create_dir_all(&profile)?;
        let mut child = tokio::process::Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--mute-audio",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Launch(format!("{}: {e}", bin.display())))?;
        let stderr = child.stderr.take().ok_or_else(|| Error::Launch("no stderr".into()))?;
        let mut lines = BufReader::new(stderr).lines();
        let find = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(at) = line.find("ws://") {
                    return Ok::<_, Error>(line[at..].trim().to_owned());
                }
            }
            Err(Error::Launch("Chromium exited before it listened for DevTools".into()))
        };
        let url = tokio::time::timeout(Duration::from_secs(30), find)
            .await
            .map_err(|_| Error::Timeout("Chromium did not print its DevTools address in 30 s".into()))??;
        // Keep draining stderr, or Chromium blocks once the pipe fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.map_err(|e| Error::Connection(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let pending: Pending = Arc::default();
        let events: Events = Arc::default();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(Message::text(m)).await.is_err() {
                    break;
                }
            }
        });
        let (p, ev) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(done) = lock(&p).remove(&id) {
                        let answer = match v.get("error") {
                            Some(e) => Err(e.get("message").and_then(Value::as_str).unwrap_or("error").to_owned()),
                            None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
                        };
                        let _ = done.send(answer);
                    }
                } else if let Some(s) = v.get("sessionId").and_then(Value::as_str) {
                    lock(&ev).entry(s.to_owned()).or_default().push(v.clone());
                }
            }
            // The connection ended: every waiting command learns it.
            lock(&p).clear();
        });
        let conn = Connection { tx, pending, events, next: Arc::new(AtomicU64::new(1)) };
        Ok(Self { child, profile, conn })
    }

    /// A new tab with a `width` × `height` CSS-pixel viewport (`mobile`: a phone's touch viewport).
    pub async fn page(&self, width: u32, height: u32, mobile: bool) -> Result<Page> {
        let created = self.conn.call(None, "Target.createTarget", json!({"url": "about:blank"})).await?;
        let target = created["targetId"].as_str().unwrap_or_default().to_owned();
        let attached =
            self.conn.call(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true})).await?;
        let session = attached["sessionId"].as_str().unwrap_or_default().to_owned();
        let page = Page { conn: self.conn.clone(), session };
        for m in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(m, json!({})).await?;
        }
        page.viewport(width, height, mobile).await?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One tab.
#[derive(Debug, Clone)]
pub struct Page {
    conn: Connection,
    session: String,
}

impl Page {
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(Some(&self.session), method, params).await
    }

    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) -> Result<()> {
        let scale = if mobile { 3 } else { 1 };
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}),
        )
        .await?;
        self.call("Emulation.setTouchEmulationEnabled", json!({"enabled": mobile})).await?;
        Ok(())
    }

    /// Opens `url` and waits for the document to finish loading.
    pub async fn goto(&self, url: &str) -> Result<()> {
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            return Err(Error::Protocol { method: "Page.navigate".into(), message: e.into() });
        }
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(15)).await?;
        Ok(())
    }

    /// Evaluates `expression` (a promise is awaited) and returns its value as JSON.
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true, "userGesture": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex
                .pointer("/exception/description")
                .and_then(Value::as_str)
                .or_else(|| ex.get("text").and_then(Value::as_str))
                .unwrap_or("exception");
            return Err(Error::Script(text.to_owned()));
        }
        Ok(r.pointer("/result/value").cloned().unwrap_or(Value::Null))
    }

    /// Waits until `expression` is truthy; returns its last value.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            match self.eval(expression).await {
                Ok(v) if truthy(&v) => return Ok(v),
                Ok(v) => last = v,
                Err(Error::Script(_)) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                let text = self.text("body").await.unwrap_or_default();
                let shown: String = text.chars().take(1500).collect();
                return Err(Error::Timeout(format!(
                    "{expression} (last value {last}) after {timeout:?}; the page shows: {shown}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an element matching `selector` to exist and be visible.
    pub async fn wait_visible(&self, selector: &str, timeout: Duration) -> Result<()> {
        let sel = json!(selector);
        self.wait_for(
            &format!(
                "(() => {{ const e = document.querySelector({sel}); return !!e && e.getClientRects().length > 0; }})()"
            ),
            timeout,
        )
        .await
        .map(|_| ())
    }

    /// The visible text of the first element matching `selector` (`""` when there is none).
    pub async fn text(&self, selector: &str) -> Result<String> {
        let sel = json!(selector);
        let v = self.eval(&format!("(document.querySelector({sel}) || {{}}).innerText || ''")).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Clicks the middle of the element with real mouse events (so an element covered by another, or outside
    /// the viewport until scrolled to, behaves as it would for a person).
    pub async fn click(&self, selector: &str) -> Result<()> {
        self.wait_visible(selector, Duration::from_secs(10)).await?;
        let sel = json!(selector);
        let b = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView({{block: 'center'}}); \
                 const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await?;
        let (x, y) = (b[0].as_f64().unwrap_or(0.0), b[1].as_f64().unwrap_or(0.0));
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            )
            .await?;
        }
        Ok(())
    }

    /// Focuses the element, selects what it holds, and types `text` as keyboard input.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<()> {
        self.wait_visible(selector, Duration::from_secs(10)).await?;
        let sel = json!(selector);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.focus(); e.select && e.select(); }})()"
        ))
        .await?;
        self.call("Input.insertText", json!({"text": text})).await?;
        Ok(())
    }

    /// Presses a key (`Tab`, `Enter`, …) on whatever has focus.
    pub async fn press(&self, key: &str) -> Result<()> {
        let code = match key {
            "Tab" => 9,
            "Enter" => 13,
            "Escape" => 27,
            " " => 32,
            _ => 0,
        };
        let text = match key {
            "Enter" => "\r",
            " " => " ",
            _ => "",
        };
        for kind in ["keyDown", "keyUp"] {
            let mut p = json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code});
            if kind == "keyDown" && !text.is_empty() {
                p["text"] = json!(text);
            }
            self.call("Input.dispatchKeyEvent", p).await?;
        }
        Ok(())
    }

    /// Writes a PNG of the whole page.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .map_err(|e| Error::Protocol { method: "Page.captureScreenshot".into(), message: e.to_string() })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, data)?;
        Ok(())
    }

    /// What went wrong in the page so far: uncaught exceptions, console errors, and browser log errors (among them
    /// Content-Security-Policy and Trusted Types violations).
    pub fn problems(&self) -> Vec<String> {
        let events = lock(&self.conn.events);
        let mut out = Vec::new();
        for e in events.get(&self.session).into_iter().flatten() {
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(format!(
                    "exception: {}",
                    e.pointer("/params/exceptionDetails/exception/description")
                        .or_else(|| e.pointer("/params/exceptionDetails/text"))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                )),
                Some("Runtime.consoleAPICalled")
                    if e.pointer("/params/type").and_then(Value::as_str) == Some("error") =>
                {
                    out.push(format!("console.error: {}", e.pointer("/params/args/0/value").unwrap_or(&Value::Null)));
                }
                // A failed request the page answered for itself (a 409 shown to the user) is not a problem; a
                // policy violation ("security"), a script or a rendering error is.
                Some("Log.entryAdded")
                    if e.pointer("/params/entry/level").and_then(Value::as_str) == Some("error")
                        && e.pointer("/params/entry/source").and_then(Value::as_str) != Some("network") =>
                {
                    out.push(format!(
                        "log ({}): {}",
                        e.pointer("/params/entry/source").and_then(Value::as_str).unwrap_or("?"),
                        e.pointer("/params/entry/text").and_then(Value::as_str).unwrap_or("?")
                    ));
                }
                _ => {}
            }
        }
        out
    }

    /// Forgets the problems seen so far (after a step that is meant to provoke some).
    pub fn clear_problems(&self) {
        lock(&self.conn.events).remove(&self.session);
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
