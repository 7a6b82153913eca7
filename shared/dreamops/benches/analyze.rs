//! Rules-path analysis latency: `diagnose` on every eval case (the starter set in ../shared/eval/cases, the
//! project's own in tests/eval/cases, the blind set in tests/eval/blind and the holdout batches in
//! tests/eval/holdout), the snapshot already in memory.
//! Target: p99 under 1 ms per case.
//!
//! Run: `cargo bench -p dreamops --bench analyze` (prints p50/p99/max over all runs and the slowest cases).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use domain::observation::Snapshot;

const WARMUP: usize = 50;
const RUNS_PER_CASE: usize = 400;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

fn cases() -> Vec<(String, Snapshot)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in [
        root.join("../shared/eval/cases"),
        root.join("tests/eval/cases"),
        root.join("tests/eval/blind"),
        root.join("tests/eval/holdout"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!("skipping {} (missing)", dir.display());
            continue;
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
            let case = dreamops::eval::load_case(&f).unwrap();
            out.push((case.id.clone(), case.snapshot()));
        }
    }
    out
}

fn main() {
    let cases = cases();
    assert!(!cases.is_empty(), "no cases found");
    let mut all = Vec::with_capacity(cases.len() * RUNS_PER_CASE);
    let mut per_case = Vec::with_capacity(cases.len());
    for (id, s) in &cases {
        for _ in 0..WARMUP {
            black_box(pipeline::diagnose::diagnose(black_box(s)));
        }
        let mut samples = Vec::with_capacity(RUNS_PER_CASE);
        for _ in 0..RUNS_PER_CASE {
            let t = Instant::now();
            black_box(pipeline::diagnose::diagnose(black_box(s)));
            samples.push(t.elapsed());
        }
        samples.sort();
        per_case.push((percentile(&samples, 0.99), id.clone()));
        all.extend(samples);
    }
    all.sort();
    per_case.sort();
    let (p50, p99, max) = (percentile(&all, 0.50), percentile(&all, 0.99), *all.last().unwrap());
    println!(
        "analyze (rules) over {} cases x {RUNS_PER_CASE} runs: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        cases.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        max.as_secs_f64() * 1e6
    );
    println!("slowest cases by p99:");
    for (p, id) in per_case.iter().rev().take(5) {
        println!("  {id:<10} p99 {:.1} µs", p.as_secs_f64() * 1e6);
    }
    let target = Duration::from_millis(1);
    println!("target p99 < 1 ms: {}", if p99 < target { "met" } else { "MISSED" });
}
