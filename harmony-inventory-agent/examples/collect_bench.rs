//! Times one full in-process collection on this machine (warm): prints the
//! median and p95 over N runs. Used by `.ci/bench-agent`.

use std::time::Instant;

use harmony_inventory_agent::collect::Collector;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200)
        .clamp(1, 100_000);
    let collector = Collector::new("/");
    // Warm the page cache and the allocator.
    for _ in 0..5 {
        std::hint::black_box(collector.collect());
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(collector.collect());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "collect_ms median={:.3} p95={:.3} min={:.3} runs={runs}",
        pct(0.5),
        pct(0.95),
        times[0]
    );
}
