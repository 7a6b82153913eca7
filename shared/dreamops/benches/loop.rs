//! Agent overhead of each sandbox scenario, end to end: wall time spent in the intake and the stage handlers
//! (kube client calls to the sandbox included), excluding simulated waiting. Target: under 50 ms per scenario.
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
            for _ in 0..RUNS {
                let run = dreamops::demo::run(name).await.unwrap();
                assert!(run.passed(), "{}", dreamops::demo::render(&run));
                times.push(run.agent_time);
            }
            times.sort();
            let median = times[RUNS / 2];
            worst = worst.max(times[RUNS - 1]);
            println!("{name:<22} agent time: median {:>8.2} ms  max {:>8.2} ms", ms(median), ms(times[RUNS - 1]));
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
