//! The fuzz targets' regression corpus: every input kept under `fuzz/regressions/` (the
//! crashes found, and hand-written nasty lines) runs through the same decoder on every
//! test run, stable toolchain or not.

#[test]
fn the_block_file_corpus_decodes_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/block_file");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        tos_blockstm::blockfile::decode_for_fuzzing(&data);
        count += 1;
    }
    assert!(count >= 4, "the corpus at {} is missing", dir.display());
}

#[test]
fn the_wire_corpus_decodes_or_fails_cleanly_and_round_trips() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/wire");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(broken) = tos_adapter::tx::check_round_trip(&data) {
            panic!("{}: {broken}", path.display());
        }
        count += 1;
    }
    assert!(count >= 100, "the corpus at {} is missing", dir.display());
}

mod block_file_proptest {
    use proptest::prelude::*;

    /// Lines of a real block file (a genesis and a block in TOS's JSON, kept in the
    /// corpus; a block by its wire) to mutate.
    fn seeds() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let read = |name: &str| std::fs::read_to_string(dir.join("block_file").join(name)).unwrap();
        vec![
            read("valid-genesis"),
            read("valid-block"),
            format!(
                r#"{{"type": "block", "topoheight": 2, "transactions": [{{"wire_hex": "{}"}}]}}"#,
                std::fs::read_dir(dir.join("wire"))
                    .ok()
                    .and_then(|mut d| d.next())
                    .and_then(|e| e.ok())
                    .and_then(|e| std::fs::read(e.path()).ok())
                    .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                    .unwrap_or_default()
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("BLOCKSTM_PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
            ..ProptestConfig::default()
        })]

        /// The block-file reader on mutated lines and arbitrary bytes: it may refuse them,
        /// never panic (a stable-toolchain stand-in for the `block_file` fuzz target).
        #[test]
        fn mutated_block_files_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec(
                (any::<prop::sample::Index>(), any::<u8>(), 0u8..3),
                1..6,
            ),
            noise in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = seeds()[which].clone().into_bytes();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len().max(1));
                match op {
                    0 if !bytes.is_empty() => bytes[i] = byte,
                    1 if !bytes.is_empty() => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i.min(bytes.len()), byte),
                }
            }
            tos_blockstm::blockfile::decode_for_fuzzing(&bytes);
            tos_blockstm::blockfile::decode_for_fuzzing(&noise);
        }
    }
}
