//! Fuzzing on the stable toolchain, for a bounded time: TOS's wire decoder and the block
//! file reader of `replay` on inputs mutated from their corpus, as libFuzzer mutates
//! (bit flips, bytes, interesting integers, deletions, insertions, duplications, splices),
//! keeping the inputs that decode as new seeds. Each target runs `FUZZ_SECONDS` seconds
//! (1 by default; CI runs them longer in release). The properties: no input panics, and
//! whatever the wire decoder accepts encodes back to its bytes.
//!
//! A failing input is written to `target/fuzz-crashes/` and named in the failure, with the
//! seed that found it (`FUZZ_SEED=<seed>` replays the same run): add it to
//! `fuzz/regressions/<target>/`, where `tests/fuzz_regressions.rs` runs it on every test
//! run, then fix the decoder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small, seedable generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING_BYTES: [u8; 8] = [0, 1, 0x7f, 0x80, 0xfe, 0xff, b'"', b'9'];
const INTERESTING_WORDS: [u64; 8] = [
    0,
    1,
    0xff,
    0x100,
    u32::MAX as u64,
    1 << 32,
    i64::MAX as u64,
    u64::MAX,
];
const TOKENS: [&[u8]; 12] = [
    b"null",
    b"[]",
    b"{}",
    b"\"",
    b"-1",
    b"1e400",
    b"18446744073709551616",
    b"\"wire_hex\": \"",
    b"\"transactions\": [",
    b",",
    b"\\u0000",
    b"\"type\": \"genesis\"",
];

/// One to four of libFuzzer's kinds of mutation of `input`, with `other` for splices.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        let at = rng.below(len + 1);
        match rng.below(10) {
            0 if len > 0 => out[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => out[at.min(len - 1)] = rng.next() as u8,
            2 if len > 0 => out[at.min(len - 1)] = INTERESTING_BYTES[rng.below(8)],
            3 if len >= 8 => {
                let at = at.min(len - 8);
                let word = INTERESTING_WORDS[rng.below(8)];
                let bytes = if rng.below(2) == 0 {
                    word.to_le_bytes()
                } else {
                    word.to_be_bytes()
                };
                out[at..at + 8].copy_from_slice(&bytes);
            }
            4 if len > 0 => {
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at.min(len - 1)..end);
            }
            5 => {
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            6 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let chunk = out[start..end].to_vec();
                out.splice(at..at, chunk);
            }
            7 if !other.is_empty() => {
                let from = rng.below(other.len());
                let chunk = &other[from..(from + 1 + rng.below(128)).min(other.len())];
                let end = (at + rng.below(64)).min(len);
                out.splice(at..end, chunk.iter().copied());
            }
            8 => out.truncate(at),
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

/// The inputs of `dir`, sorted by name (the corpus is part of the repository).
fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1
}

/// Runs `check` on mutations of `seeds` for the time budget; `check` says whether the
/// input got far enough to be kept as a seed, and panics (or returns `Err`) on a failure.
/// How many inputs ran.
fn fuzz(
    target: &str,
    mut seeds: Vec<Vec<u8>>,
    check: impl Fn(&[u8]) -> Result<bool, String>,
) -> u64 {
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let seed = seed();
    let mut rng = Rng(seed);
    let end = Instant::now() + budget();
    let mut runs = 0u64;
    // Keep the decoder's own panic messages out of the output: a failure is reported
    // below with its input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let failure = loop {
        if runs % 64 == 0 && Instant::now() >= end {
            break None;
        }
        let input = {
            let base = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, base, other)
        };
        runs += 1;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input))) {
            Ok(Ok(true)) if seeds.len() < 4096 => seeds.push(input),
            Ok(Ok(_)) => {}
            Ok(Err(broken)) => break Some((input, broken)),
            Err(payload) => break Some((input, executor::panic_message(&*payload))),
        }
    };
    std::panic::set_hook(hook);
    if let Some((input, why)) = failure {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
            .join("fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let name = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            input.hash(&mut hasher);
            hasher.finish()
        };
        let path = dir.join(format!("{target}-{name:016x}"));
        let _ = std::fs::write(&path, &input);
        panic!(
            "{target}: {why}\non the input written to {} (FUZZ_SEED={seed}); add it to fuzz/regressions/{target}/",
            path.display()
        );
    }
    println!(
        "{target}: {runs} inputs, {} seeds kept (FUZZ_SEED={seed})",
        seeds.len()
    );
    runs
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_wire_decoder_survives_mutated_transactions() {
    let seeds = corpus(&root().join("fuzz/regressions/wire"));
    let runs = fuzz("wire", seeds, |bytes| {
        tos_adapter::tx::check_round_trip(bytes)?;
        Ok(tos_adapter::Transaction::from_wire(bytes).is_ok())
    });
    assert!(runs > 0);
}

#[test]
fn the_block_file_reader_survives_mutated_lines() {
    // The corpus holds a valid genesis and block (`valid-*`) beside the nasty lines.
    let mut seeds = corpus(&root().join("fuzz/regressions/block_file"));
    // Blocks by their wire bytes, from the wire corpus.
    for wire in corpus(&root().join("fuzz/regressions/wire"))
        .iter()
        .take(32)
    {
        let hex: String = wire.iter().map(|x| format!("{x:02x}")).collect();
        seeds.push(
            format!(
                r#"{{"type": "block", "topoheight": 2, "transactions": [{{"wire_hex": "{hex}"}}]}}"#
            )
            .into_bytes(),
        );
    }
    let runs = fuzz("block_file", seeds, |bytes| {
        Ok(tos_blockstm::blockfile::decode_for_fuzzing(bytes) > 0)
    });
    assert!(runs > 0);
}
