//! Agent overhead of each sandbox scenario, end to end: wall time spent in the intake and the stage handlers,
//! excluding simulated waiting, and excluding the time the in-process sandbox API server spends computing its
//! answers (the simulated cluster's work, measured inside its handlers). The total with the sandbox is printed
//! too. Target: agent overhead under 50 ms per scenario.
//!
//! Run: `cargo bench -p dreamops --bench loop`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Duration;

const RUNS: usize = 5;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut worst = Duration::ZERO;
        for (name, _) in sandbox::scenario::BUILTIN {
            let mut times = Vec::new();
            let mut totals = Vec::new();
            for _ in 0..RUNS {
                let run = dreamops::demo::run(name).await.unwrap();
                assert!(run.passed(), "{}", dreamops::demo::render(&run));
                times.push(run.agent_time.saturating_sub(run.cluster_time));
                totals.push(run.agent_time);
            }
            times.sort();
            totals.sort();
            let median = times[RUNS / 2];
            worst = worst.max(times[RUNS - 1]);
            println!(
                "{name:<22} agent overhead: median {:>6.2} ms  max {:>6.2} ms   (with the sandbox's own work: median {:>6.2} ms  max {:>6.2} ms)",
                ms(median),
                ms(times[RUNS - 1]),
                ms(totals[RUNS / 2]),
                ms(totals[RUNS - 1])
            );
        }
        println!(
            "target < 50 ms per scenario: {} (worst run {:.2} ms)",
            if worst < Duration::from_millis(50) { "met" } else { "MISSED" },
            ms(worst)
        );
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
