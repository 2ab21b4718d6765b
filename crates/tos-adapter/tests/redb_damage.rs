//! A damaged database file is an error or a readable database, never a crash: every byte
//! of redb's header and both commit slots is flipped in turn (three ways), and the file
//! opened, read whole and closed. redb panics on some of these (caught by the store) and
//! would size an 8 TiB allocation from others (refused by the store's header check before
//! redb reads it); a panic escaping or an abort fails this test.

use tos_adapter::{PublicKey, RedbStore, StateKey, StateValue, TosStorage, TOS_ASSET};

fn database(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("good.redb");
    let store = RedbStore::open(&path).unwrap();
    for topoheight in 0..4u64 {
        let changes: Vec<_> = (0..200u8)
            .map(|i| {
                let account = PublicKey([i; 32]);
                let key = if i % 2 == 0 {
                    StateKey::Nonce(account)
                } else {
                    StateKey::Balance(account, TOS_ASSET)
                };
                (key, StateValue::Number(topoheight * 1_000 + u64::from(i)))
            })
            .collect();
        store.write_block(topoheight, &changes).unwrap();
    }
    drop(store);
    std::fs::read(&path).unwrap()
}

#[test]
fn no_flipped_header_byte_crashes() {
    let dir = std::env::temp_dir().join(format!("tos-blockstm-damage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = database(&dir);
    let path = dir.join("damaged.redb");
    let (mut errors, mut readable) = (0, 0);
    // redb's header (64 bytes) and its two commit slots (128 bytes each).
    for offset in 9..320 {
        for flip in [0xff, 0x80, 0x01] {
            let mut bytes = good.clone();
            bytes[offset] ^= flip;
            std::fs::write(&path, &bytes).unwrap();
            let read = RedbStore::open_existing(&path).and_then(|store| {
                store.topoheight()?;
                store.latest_all()
            });
            match read {
                Ok(_) => readable += 1,
                Err(_) => errors += 1,
            }
        }
    }
    // Both outcomes occur: the check is not vacuous in either direction.
    assert!(
        errors > 0 && readable > 0,
        "{errors} errors, {readable} readable"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
