//! The `dreamops` command: the whole on-call loop in one local process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dreamops::config::FileConfig;
use dreamops::serve::{KubeTarget, ServeOptions};

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
    /// Serve the webhook and incident API with background workers.
    Serve {
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

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let json = std::env::var("DREAMOPS_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
                sandbox::scenario::BUILTIN.iter().map(|(n, _)| (*n).to_owned()).collect()
            } else {
                vec![scenario]
            };
            let mut passed = 0;
            for name in &names {
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
        Command::Serve { port, sandbox, kube_url, context, config, data_dir } => {
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
            let opts = ServeOptions {
                port: port.or(config.server.port).unwrap_or(8080),
                data_dir: data_dir.or(config.server.data_dir.clone()).unwrap_or_else(|| PathBuf::from(".dreamops")),
                kube,
                config,
            };
            let server = match dreamops::serve::start(opts).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            println!("dreamops serve listening on {}", server.url());
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
