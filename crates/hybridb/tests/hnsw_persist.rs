//! Checkpoint round trips, corruption and truncation.

mod hnsw_common;

use std::sync::OnceLock;

use hnsw_common::*;
use hybridb::index::hnsw::{DecodeError, Hnsw, HnswParams, Metric};

/// An index over 2000 bigann rows with some removed and one slot beyond them, built once.
fn sample_index() -> &'static (Hnsw, Rows) {
    static F: OnceLock<(Hnsw, Rows)> = OnceLock::new();
    F.get_or_init(|| {
        let (base, queries, _) = bigann();
        let mut index = build(&base[..2000], params(128));
        for s in (0..2000).step_by(7) {
            index.remove(s);
        }
        index.insert(3000, &base[3000]).expect("insert");
        (index, queries)
    })
}

#[test]
fn round_trip_gives_identical_results() {
    let (index, queries) = sample_index();
    let bytes = index.to_bytes();
    let mut via_writer = Vec::new();
    index.write_to(&mut via_writer).expect("write");
    assert_eq!(bytes, via_writer);
    let loaded = Hnsw::read_from(bytes.as_slice()).expect("decode");
    assert_eq!(loaded.len(), index.len());
    assert_eq!(loaded.params(), index.params());
    for q in queries {
        assert_eq!(loaded.search(q, 10, 50), index.search(q, 10, 50));
    }
    for s in 0..2001 {
        assert_eq!(loaded.contains(s), index.contains(s));
    }
    // A loaded index keeps working.
    let mut loaded = loaded;
    loaded.insert(5000, &queries[0]).expect("insert after load");
    assert_eq!(loaded.search(&queries[0], 1, 16)[0], (5000, 0.0));
}

#[test]
fn empty_index_round_trips() {
    let index = Hnsw::new(HnswParams::new(3, Metric::Dot));
    let loaded = Hnsw::from_bytes(&index.to_bytes()).expect("decode");
    assert!(loaded.is_empty());
    assert_eq!(loaded.params().metric, Metric::Dot);
}

#[test]
fn corruption_is_an_error() {
    let (index, _) = sample_index();
    let bytes = index.to_bytes();
    let mut rng = Rng(1);
    let mut positions: Vec<usize> = (0..64).collect();
    positions.extend((0..200).map(|_| rng.below(bytes.len())));
    positions.push(bytes.len() - 1);
    for at in positions {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5A;
        assert!(
            Hnsw::from_bytes(&bad).is_err(),
            "flipped byte {at} was accepted"
        );
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(Hnsw::from_bytes(&bad), Err(DecodeError::BadMagic)));
    let mut bad = bytes.clone();
    bad[8] = 99;
    assert!(matches!(
        Hnsw::from_bytes(&bad),
        Err(DecodeError::UnsupportedVersion(_))
    ));
}

#[test]
fn truncation_is_an_error() {
    let (index, _) = sample_index();
    let bytes = index.to_bytes();
    let mut cuts: Vec<usize> = (0..80).collect();
    cuts.extend([
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 5,
        bytes.len() - 1,
    ]);
    for cut in cuts {
        assert!(
            Hnsw::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut} accepted"
        );
        assert!(Hnsw::read_from(&bytes[..cut]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Hnsw::from_bytes(&longer).is_err());
}
