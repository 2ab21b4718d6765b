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
