//! The `dreamops` command: the whole on-call loop in one local process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dreamops::config::FileConfig;
use dreamops::serve::{KubeTarget, ServeOptions};

/// mimalloc: per-thread free lists instead of glibc's arenas. Under a webhook storm glibc's `malloc`/`free` were
/// ~15% of `serve`'s CPU, and mimalloc hands freed pages back to the system, so a drained backlog leaves no
/// resident growth behind.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "dreamops", version, about = "Autonomous on-call for Kubernetes: alert → diagnosis → verified fix.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios end to end against the sandbox cluster and print their timelines.
    Demo {
        /// A scenario name, or `all`.
        #[arg(long, default_value = "all")]
        scenario: String,
    },
    /// Serve the webhooks, the control API (/v1) and /metrics, with background workers.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; loopback only unless you say otherwise).
        #[arg(long, conflicts_with = "port")]
        listen: Option<std::net::SocketAddr>,
        /// Shorthand for --listen 127.0.0.1:PORT.
        #[arg(long)]
        port: Option<u16>,
        /// Run an in-process sandbox with this scenario instead of using a kubeconfig context.
        #[arg(long, conflicts_with_all = ["kube_url", "context"])]
        sandbox: Option<String>,
        /// A Kubernetes API server URL without authentication (e.g. `dreamops sandbox`).
        #[arg(long, conflicts_with = "context")]
        kube_url: Option<String>,
        /// The kubeconfig context (default: the current one, or the config file's).
        #[arg(long)]
        context: Option<String>,
        /// TOML config file (default: $DREAMOPS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the store file lives (default: the config's, else ./.dreamops).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Bootstrap: create teams and keys straight in the store (a stopped serve's data directory, or the AWS table).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// List or show a team's incidents through the API ($DREAMOPS_URL, $DREAMOPS_API_KEY).
    Incidents {
        #[command(subcommand)]
        command: IncidentsCommand,
    },
    /// Approve an incident's proposal (its current dry-run diff is shown and its hash approved).
    Approve {
        id: String,
        /// The diff hash you reviewed; the approval is refused if the proposal's diff is no longer this one.
        #[arg(long)]
        proposal: Option<String>,
        /// The team (default: the API key's).
        #[arg(long)]
        team: Option<String>,
    },
    /// Reject an incident's proposal: nothing changes, the incident is escalated.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        team: Option<String>,
    },
    /// Print the control API's OpenAPI document.
    Openapi,
    /// Serve only the sandbox Kubernetes API for a scenario.
    Sandbox {
        scenario: String,
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// List the sandbox scenarios.
    Scenarios,
    /// Analyze one case file and print the answer as JSON.
    Analyze {
        case: PathBuf,
        /// Consult the language model of the config's [llm] section when the rules leave the case open.
        #[arg(long)]
        llm: bool,
        /// Config file (default: $DREAMOPS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Analyze and score every case under one or more directories.
    Eval {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Consult the language model of the config's [llm] section when the rules leave a case open.
        #[arg(long)]
        llm: bool,
        /// Config file (default: $DREAMOPS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct StoreArgs {
    /// The data directory of a stopped `dreamops serve` (default ./.dreamops).
    #[arg(long, conflicts_with_all = ["aws", "table"])]
    data_dir: Option<PathBuf>,
    /// Write to a deployment's DynamoDB table with your AWS credentials instead.
    #[arg(long, requires = "table")]
    aws: bool,
    /// The table (`terraform output -raw table_name`).
    #[arg(long, requires = "aws")]
    table: Option<String>,
}

impl StoreArgs {
    fn target(&self) -> dreamops::cli::AdminTarget {
        match (&self.aws, &self.table) {
            (true, Some(t)) => dreamops::cli::AdminTarget::Aws { table: t.clone() },
            _ => dreamops::cli::AdminTarget::Local(self.data_dir.clone().unwrap_or_else(|| PathBuf::from(".dreamops"))),
        }
    }
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a team and print {"team", "api_key"} (its first admin key, shown once) as JSON.
    CreateTeam {
        team: String,
        #[arg(long)]
        name: Option<String>,
        /// Config file whose [defaults] the team starts with (default: $DREAMOPS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create an API key and print it (shown once) as JSON.
    CreateKey {
        /// The team the key belongs to.
        #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
        team: Option<String>,
        /// A deployment-wide operator key instead (manages every team).
        #[arg(long)]
        operator: bool,
        /// viewer, responder or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[arg(long)]
        name: String,
        /// When the key stops working (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum IncidentsCommand {
    /// The newest incidents.
    List {
        /// Only these states (comma-separated).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        team: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One incident with its timeline and proposal, as JSON.
    Show {
        id: String,
        #[arg(long)]
        team: Option<String>,
    },
}

#[expect(clippy::print_stdout, reason = "the command line prints its results")]
fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let json = std::env::var("DREAMOPS_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colours only on a terminal: a log file or a collector reading stderr gets plain text, not escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json { builder.json().init() } else { builder.init() }
}

#[expect(clippy::print_stderr, reason = "the command line reports its errors on stderr")]
fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("dreamops: {msg}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { scenario } => {
            init_tracing("error");
            let names: Vec<String> = if scenario == "all" {
                let mut all: Vec<String> = sandbox::scenario::BUILTIN.iter().map(|(n, _)| (*n).to_owned()).collect();
                all.push("billing".into());
                all
            } else {
                vec![scenario]
            };
            let mut passed = 0;
            for name in &names {
                if name == "billing" {
                    match dreamops::demo_billing::run().await {
                        Ok(run) => {
                            println!("{}", dreamops::demo_billing::render(&run));
                            passed += usize::from(run.passed());
                        }
                        Err(e) => return fail(format!("scenario billing: {e}")),
                    }
                    continue;
                }
                match dreamops::demo::run(name).await {
                    Ok(run) => {
                        println!("{}", dreamops::demo::render(&run));
                        passed += usize::from(run.passed());
                    }
                    Err(e) => return fail(format!("scenario {name}: {e}")),
                }
            }
            println!("{passed}/{} scenarios ended as expected.", names.len());
            if passed == names.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Admin { command } => {
            init_tracing("warn");
            let result = match command {
                AdminCommand::CreateTeam { team, name, config, store } => {
                    match dreamops::cli::settings_from(config.as_deref()) {
                        Ok(settings) => {
                            dreamops::cli::create_team(&store.target(), &team, name.as_deref(), settings).await
                        }
                        Err(e) => Err(e),
                    }
                }
                AdminCommand::CreateKey { team, operator, role, name, expires, store } => {
                    let role = if operator {
                        Some(domain::Role::Operator)
                    } else {
                        domain::Role::parse(&role).filter(|r| *r != domain::Role::Operator)
                    };
                    match role {
                        Some(r) => dreamops::cli::create_key(&store.target(), team.as_deref(), r, &name, expires).await,
                        None => Err(dreamops::cli::CliError("--role is viewer, responder or admin".into())),
                    }
                }
            };
            match result {
                Ok(v) => {
                    print_json(&v);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Incidents { command } => {
            init_tracing("warn");
            let result = match command {
                IncidentsCommand::List { state, limit, team, json } => match client_for(team.as_deref()).await {
                    Ok((client, team)) => client.list(&team, state.as_deref(), limit).await.map(|page| {
                        if json {
                            print_json(&page);
                        } else {
                            print!("{}", dreamops::cli::render_list(&page));
                        }
                    }),
                    Err(e) => Err(e),
                },
                IncidentsCommand::Show { id, team } => match client_for(team.as_deref()).await {
                    Ok((client, team)) => client.show(&team, &id).await.map(|v| print_json(&v)),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Approve { id, proposal, team } => {
            init_tracing("warn");
            let (client, team) = match client_for(team.as_deref()).await {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match client.approve(&team, &id, proposal.as_deref()).await {
                Ok((detail, result)) => {
                    print!("{}", dreamops::cli::render_diff(&detail));
                    print_json(&result);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Reject { id, reason, team } => {
            init_tracing("warn");
            let (client, team) = match client_for(team.as_deref()).await {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match client.reject(&team, &id, &reason).await {
                Ok(v) => {
                    print_json(&v);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Openapi => {
            print_json(&control::openapi::document());
            ExitCode::SUCCESS
        }
        Command::Serve { listen, port, sandbox, kube_url, context, config, data_dir } => {
            init_tracing("info");
            let config = match FileConfig::resolve(config.as_deref(), |k| std::env::var(k).ok()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let kube = match (sandbox, kube_url) {
                (Some(s), _) => KubeTarget::Sandbox(s),
                (None, Some(u)) => KubeTarget::Url(u),
                (None, None) => KubeTarget::Kubeconfig(context.or(config.kubernetes.context.clone())),
            };
            let listen = match (listen, port, &config.server.listen) {
                (Some(a), _, _) => a,
                (None, Some(p), _) => std::net::SocketAddr::from(([127, 0, 0, 1], p)),
                (None, None, Some(a)) => match a.parse() {
                    Ok(a) => a,
                    Err(e) => return fail(format!("[server] listen {a:?}: {e}")),
                },
                (None, None, None) => std::net::SocketAddr::from(([127, 0, 0, 1], config.server.port.unwrap_or(8080))),
            };
            let opts = ServeOptions {
                listen,
                data_dir: data_dir.or(config.server.data_dir.clone()).unwrap_or_else(|| PathBuf::from(".dreamops")),
                kube,
                config,
            };
            let server = match dreamops::serve::start(opts).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            if let Some(key) = &server.bootstrap_key {
                println!("created team \"default\"; its admin API key (shown once, store it now):");
                println!("  export DREAMOPS_URL={} DREAMOPS_API_KEY={key}", server.url());
                println!(
                    "  curl -H \"Authorization: Bearer $DREAMOPS_API_KEY\" $DREAMOPS_URL/v1/teams/default/incidents"
                );
            }
            println!("dreamops serve listening on {}", server.url());
            if let Some(link) = server.sign_in_url() {
                println!(
                    "dashboard: open {link} to sign in as the default team's admin (single use, {} minutes)",
                    dreamops::serve::SIGN_IN_TTL.as_secs() / 60
                );
            } else {
                println!("dashboard: {}/ (sign in with an API key)", server.url());
            }
            shutdown_signal().await;
            server.stop().await;
            ExitCode::SUCCESS
        }
        Command::Sandbox { scenario, port } => {
            init_tracing("info");
            let scenario = match sandbox::Scenario::builtin(&scenario) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let clock = sandbox::SimClock::with_speed(jiff::Timestamp::now(), 1.0);
            let sb = match sandbox::Sandbox::start(scenario, clock, port).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let alert = sb.alert();
            println!("sandbox API on {} (scenario {})", sb.url(), sb.scenario().name);
            println!("alert labels: {}", serde_json::to_string(&alert.labels).unwrap_or_default());
            shutdown_signal().await;
            ExitCode::SUCCESS
        }
        Command::Scenarios => {
            for s in sandbox::Scenario::all_builtin().unwrap_or_default() {
                println!("{:<22} expect {:<12} {}", s.name, s.expected.action, s.summary);
            }
            ExitCode::SUCCESS
        }
        Command::Analyze { case, llm, config } => {
            let c = match dreamops::eval::load_case(&case) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let answer = match model(llm, config.as_deref()) {
                Ok(Some((m, min))) => dreamops::eval::analyze_with(&c, m.as_ref(), min).await,
                Ok(None) => dreamops::eval::analyze(&c),
                Err(e) => return fail(e),
            };
            println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Eval { dirs, json, llm, config } => {
            let report = match model(llm, config.as_deref()) {
                Ok(Some((m, min))) => dreamops::eval::eval_dirs_with(&dirs, m.as_ref(), min).await,
                Ok(None) => dreamops::eval::eval_dirs(&dirs),
                Err(e) => return fail(e),
            };
            match report {
                Ok(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                    } else {
                        print!("{}", dreamops::eval::render(&report));
                    }
                    if report.overall.harmful > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// The API client of `DREAMOPS_URL`/`DREAMOPS_API_KEY` and the team to act on (`--team`, else the key's).
async fn client_for(team: Option<&str>) -> Result<(dreamops::cli::Client, String), dreamops::cli::CliError> {
    let client = dreamops::cli::Client::from_env(|k| std::env::var(k).ok())?;
    let team = client.team(team).await?;
    Ok((client, team))
}

/// A language model and the minimum confidence below which the rules count as unsure.
type Consulted = (std::sync::Arc<dyn domain::ports::LanguageModel>, f64);

/// The language model for `--llm`, with the default team's minimum confidence.
fn model(wanted: bool, config: Option<&std::path::Path>) -> Result<Option<Consulted>, dreamops::config::ConfigError> {
    if !wanted {
        return Ok(None);
    }
    let env = |k: &str| std::env::var(k).ok();
    let c = dreamops::config::FileConfig::resolve(config, env)?;
    let min = c.defaults.as_ref().map_or(domain::TeamSettings::default().min_confidence, |d| d.min_confidence);
    match c.language_model(env)? {
        Some(m) => Ok(Some((m, min))),
        None => Err(dreamops::config::ConfigError::Invalid(
            "--llm needs an [llm] section in the config (--config or $DREAMOPS_CONFIG)".into(),
        )),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
