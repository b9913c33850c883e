//! One benign GET and one benign JSON POST through the installed CRS at PL1 and PL2.

use std::path::Path;

use criterion::{black_box, criterion_group, Criterion};
use rpaas_crs::{load_dir, RequestInput};

const CRS_DIR: &str = "/usr/share/modsecurity-crs/rules";

fn get() -> RequestInput {
    get_with("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36")
}

fn get_with(user_agent: &str) -> RequestInput {
    RequestInput::new("GET", "/cwa/index.html?page=2&sort=name")
        .header("Host", "automate.example.com")
        .header("User-Agent", user_agent)
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header("Accept-Language", "en-US,en;q=0.5")
        .header("Accept-Encoding", "gzip, deflate, br")
}

fn json() -> RequestInput {
    json_with(
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "",
    )
}

/// `suffix` goes on every JSON member name.
fn json_with(user_agent: &str, suffix: &str) -> RequestInput {
    RequestInput::new("POST", "/cwa/api/v1/computers/42/commands")
        .header("Host", "automate.example.com")
        .header("User-Agent", user_agent)
        .header("Accept", "application/json")
        .body(
            "application/json",
            format!(
                r#"{{"command{suffix}":"refresh","options{suffix}":{{"force{suffix}":true,"timeoutSeconds{suffix}":30}},"tags{suffix}":["inventory","nightly"]}}"#
            ),
        )
}

/// `n` requests in which no User-Agent and no JSON member name repeats: what the evaluator
/// costs when its per-thread memo of libinjection's verdicts never helps.
fn distinct(n: usize) -> (Vec<RequestInput>, Vec<RequestInput>) {
    (0..n)
        .map(|i| {
            let ua = format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{i}.{} Safari/537.36", i * 7 + 3);
            (get_with(&ua), json_with(&ua, &format!("_{i}")))
        })
        .unzip()
}

fn bench(c: &mut Criterion) {
    if !Path::new(CRS_DIR).is_dir() {
        eprintln!("note: {CRS_DIR} is absent; nothing to bench");
        return;
    }
    for pl in [1u8, 2] {
        let Ok(loaded) = load_dir(Path::new(CRS_DIR), pl) else {
            eprintln!("note: CRS failed to load at PL{pl}");
            return;
        };
        let r = &loaded.rules;
        eprintln!(
            "PL{pl}: {} rules, {} with a literal prefilter, {} gated as a whole, {} fixed at load",
            r.rule_count(),
            r.prefiltered_rule_count(),
            r.gated_rule_count(),
            r.fixed_rule_count()
        );
        let (g, j) = (get(), json());
        assert!(!loaded.rules.evaluate(&g).would_block());
        assert!(!loaded.rules.evaluate(&j).would_block());
        c.bench_function(&format!("crs_pl{pl}_benign_get"), |b| {
            b.iter(|| loaded.rules.evaluate(black_box(&g)))
        });
        c.bench_function(&format!("crs_pl{pl}_benign_json_post"), |b| {
            b.iter(|| loaded.rules.evaluate(black_box(&j)))
        });
    }
}

/// `CRS_COUNT=N`: evaluates each request N times and exits, for repeatable instruction counts
/// (`valgrind --tool=callgrind --toggle-collect='*count_*'`, then `callgrind_annotate
/// --inclusive=yes` shows `count_get_pl1`...).
fn count(n: usize) {
    let load = |pl| load_dir(Path::new(CRS_DIR), pl).expect("CRS loads").rules;
    let (g, j) = (get(), json());
    // One evaluation each first: the regexes' lazy DFAs are built on first use.
    let warm = |rules: &rpaas_crs::RuleSet| {
        black_box(rules.evaluate(&g));
        black_box(rules.evaluate(&j));
    };
    let (gs, js) = distinct(n);
    let (g, j) = (std::slice::from_ref(&g), std::slice::from_ref(&j));
    let pl1 = load(1);
    warm(&pl1);
    count_get_pl1(&pl1, g, n);
    count_json_pl1(&pl1, j, n);
    count_get_pl1_distinct(&pl1, &gs, n);
    count_json_pl1_distinct(&pl1, &js, n);
    let pl2 = load(2);
    warm(&pl2);
    count_get_pl2(&pl2, g, n);
    count_json_pl2(&pl2, j, n);
    count_get_pl2_distinct(&pl2, &gs, n);
    count_json_pl2_distinct(&pl2, &js, n);
    eprintln!("{n} evaluations each");
}

macro_rules! counters {
    ($($name:ident),*) => {$(
        #[inline(never)]
        fn $name(rules: &rpaas_crs::RuleSet, reqs: &[RequestInput], n: usize) {
            // Distinct bodies, so the linker does not fold the counters into one symbol.
            black_box(stringify!($name));
            for i in 0..n {
                black_box(rules.evaluate(black_box(&reqs[i % reqs.len()])));
            }
        }
    )*};
}

counters!(
    count_get_pl1,
    count_json_pl1,
    count_get_pl2,
    count_json_pl2,
    count_get_pl1_distinct,
    count_json_pl1_distinct,
    count_get_pl2_distinct,
    count_json_pl2_distinct
);

criterion_group!(benches, bench);

fn main() {
    if let Some(n) = std::env::var("CRS_COUNT").ok().and_then(|n| n.parse().ok()) {
        count(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
