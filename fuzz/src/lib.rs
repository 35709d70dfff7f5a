//! Glue for the qmpcheck fuzz targets: [`target!`] makes a libFuzzer entry point from a
//! property of `qmpcheck::fuzz::props`, or, without the `libfuzzer` feature, a `main` that
//! runs the property on every file named on the command line (folders are walked) and
//! prints how many inputs ran per second.

use std::path::{Path, PathBuf};
use std::time::Instant;

#[cfg(feature = "libfuzzer")]
pub use libfuzzer_sys;

/// Defines the fuzz entry point for a property `fn(&[u8])`.
#[cfg(feature = "libfuzzer")]
#[macro_export]
macro_rules! target {
    ($property:path) => {
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| $property(data));
    };
}

/// Defines a `main` replaying corpus files through a property `fn(&[u8])`.
#[cfg(not(feature = "libfuzzer"))]
#[macro_export]
macro_rules! target {
    ($property:path) => {
        fn main() {
            $crate::replay_main($property)
        }
    };
}

/// Runs `property` on every file the arguments name (folders walked), `QMPCHECK_FUZZ_ROUNDS`
/// times (default 1), and prints the count and rate.
pub fn replay_main(property: fn(&[u8])) {
    let mut files = Vec::new();
    for arg in std::env::args_os().skip(1) {
        collect(Path::new(&arg), &mut files);
    }
    let inputs: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    let rounds: usize = std::env::var("QMPCHECK_FUZZ_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let started = Instant::now();
    for _ in 0..rounds {
        for input in &inputs {
            property(input);
        }
    }
    let runs = inputs.len() * rounds;
    let secs = started.elapsed().as_secs_f64();
    println!("{runs} inputs in {secs:.3}s ({:.0} exec/s), all passed", runs as f64 / secs.max(1e-9));
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            collect(&entry, out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}
