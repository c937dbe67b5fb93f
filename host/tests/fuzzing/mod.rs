//! The fuzz driver: runs a target's generator and property check over many
//! seeded cases, on the stable toolchain.
//!
//! A case is fully determined by its seed, so any failure is reproduced
//! with `KUBEWASM_FUZZ_SEED=<seed> KUBEWASM_FUZZ_CASES=1 cargo test -p
//! kubewasm --test fuzz <target>`. Inputs are built by [`Gen`] from
//! dictionaries of the shapes that matter at this boundary (URL delimiters,
//! Unicode whitespace and controls, length limits, JSON nesting) mixed with
//! uniformly random text and bytes.
//!
//! Environment:
//!
//! - `KUBEWASM_FUZZ_CASES`: cases per fast target (default: a short run
//!   that fits the normal test command);
//! - `KUBEWASM_FUZZ_LOADER_CASES`: cases for the component loader target,
//!   which compiles a component per case (default 20);
//! - `KUBEWASM_FUZZ_SEED`: the first case's seed (default fixed, so CI runs
//!   the same cases every time; pass another for a fresh campaign).

#![allow(dead_code)]

pub mod generate;
mod intents;
mod loader;
mod parsers;
mod relations;

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

pub use generate::Gen;

/// Seed of case 0 unless `KUBEWASM_FUZZ_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x6b75_6265_7761_736d;
/// Longest rendering of a failing input in a failure message.
const MAX_SHOWN: usize = 4096;

/// What a property check says about one accepted or refused input.
pub enum Verdict {
    /// The code under test accepted the input and every property held.
    Accepted,
    /// The code under test refused the input (properly).
    Refused,
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Cases for a fast target: `KUBEWASM_FUZZ_CASES`, or `short`.
pub fn cases(short: u64) -> u64 {
    env_u64("KUBEWASM_FUZZ_CASES").unwrap_or(short)
}

/// Cases for the loader target: `KUBEWASM_FUZZ_LOADER_CASES`, or `short`.
pub fn loader_cases(short: u64) -> u64 {
    env_u64("KUBEWASM_FUZZ_LOADER_CASES").unwrap_or(short)
}

/// A stable per-target salt, so targets given the same seed differ.
fn salt(target: &str) -> u64 {
    target.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn shown(input: &impl Debug) -> String {
    let mut text = format!("{input:?}");
    if text.len() > MAX_SHOWN {
        let mut end = MAX_SHOWN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let total = text.len();
        text.truncate(end);
        text.push_str(&format!("... ({total} bytes in all)"));
    }
    text
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

/// Runs `cases` cases of `target`: each builds an input with `generate`
/// and checks it with `check`, which returns the verdict or a violated
/// property. A panic or a violation fails the test with the case's seed
/// and input. Prints one summary line (`--nocapture` shows it).
pub fn run<I: Debug>(
    target: &str,
    cases: u64,
    generate: impl Fn(&mut Gen) -> I,
    check: impl Fn(&I) -> Result<Verdict, String>,
) {
    let first = env_u64("KUBEWASM_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let mut accepted = 0u64;
    for case in 0..cases {
        let seed = first.wrapping_add(case);
        let mut generator = Gen::new(seed ^ salt(target));
        let input = generate(&mut generator);
        let failure = match catch_unwind(AssertUnwindSafe(|| check(&input))) {
            Ok(Ok(Verdict::Accepted)) => {
                accepted += 1;
                continue;
            }
            Ok(Ok(Verdict::Refused)) => continue,
            Ok(Err(violation)) => format!("property violated: {violation}"),
            Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
        };
        panic!(
            "fuzz target {target}, case seed {seed:#x}: {failure}\ninput: {}\nreproduce: \
             KUBEWASM_FUZZ_SEED={seed:#x} KUBEWASM_FUZZ_CASES=1 cargo test -p kubewasm --test fuzz {target}",
            shown(&input)
        );
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz target {target}: {cases} cases ({accepted} accepted) in {secs:.2} s, {:.0} cases/s, seeds {first:#x}..",
        cases as f64 / secs.max(1e-9)
    );
}
