//! Tests of collection configs: names, dimensions, the stored form, quantization settings.

use super::*;

#[test]
fn names() {
    for ok in ["a", "docs_v2", "A-1", &"x".repeat(64)] {
        assert!(validate_collection_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "-a", "a b", "ä", "a/b", &"x".repeat(65)] {
        assert!(
            matches!(
                validate_collection_name(bad),
                Err(Error::InvalidCollectionName { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn stored_collection_round_trip() {
    let s = StoredCollection {
        cid: 7,
        config_version: 1,
        created_at: 123,
        config: CollectionConfig::new(3, Metric::L2)
            .with_payload_index("lang", PayloadIndexKind::Keyword)
            .with_vector("sparse", VectorConfig::sparse(true)),
        vector_ids: BTreeMap::from([("sparse".to_string(), 1)]),
        text_ids: BTreeMap::new(),
        last_vid: 1,
    };
    assert_eq!(StoredCollection::decode(&s.encode()).unwrap(), s);
    assert!(StoredCollection::decode(&[9, 1, 2]).is_err());
    assert!(StoredCollection::decode(&[]).is_err());
}

#[test]
fn quantization_defaults_to_none_and_old_configs_read_the_same() {
    // A config written before quantization existed (no field) reads as none, and a config
    // without quantization encodes exactly as before (no field).
    let old = r#"{"dim":4,"metric":"l2","index":{"kind":"hnsw","m":16,"ef_construction":200,"ef":64},"payload_indexes":{},"vectors":{"v":{"type":"dense","dim":2,"metric":"cosine","index":{"kind":"exact"}}}}"#;
    let c: CollectionConfig = serde_json::from_str(old).unwrap();
    assert_eq!(c.quantization, Quantization::None);
    assert!(matches!(
        c.vectors["v"],
        VectorConfig::Dense {
            quantization: Quantization::None,
            ..
        }
    ));
    assert_eq!(serde_json::to_string(&c).unwrap(), old);
    let q = c.clone().with_quantization(Quantization::Rq2);
    let json = serde_json::to_string(&q).unwrap();
    assert!(json.contains(r#""quantization":"rq2""#), "{json}");
    assert_eq!(serde_json::from_str::<CollectionConfig>(&json).unwrap(), q);
    assert!(q.validate().is_ok());
    let l1 = CollectionConfig::new(4, Metric::Manhattan);
    assert!(
        l1.clone()
            .with_quantization(Quantization::Sq8)
            .validate()
            .is_ok()
    );
    assert!(l1.with_quantization(Quantization::Rq4).validate().is_err());
}

#[test]
fn auto_resolves_by_dimension_metric_and_index() {
    use Quantization::{Auto, None as Off, Rq4, Sq8};
    let hnsw = IndexKind::hnsw();
    for (dim, metric, index, want) in [
        (384, Metric::Cosine, hnsw, Rq4),
        (383, Metric::Cosine, hnsw, Off),
        (1536, Metric::Dot, hnsw, Rq4),
        (768, Metric::L2, hnsw, Rq4),
        (768, Metric::Manhattan, hnsw, Off),
        (768, Metric::Cosine, IndexKind::Exact, Off),
    ] {
        assert_eq!(Auto.resolve(dim, metric, index), want, "{dim} {metric:?}");
    }
    // A setting given is kept as it is.
    assert_eq!(Sq8.resolve(8, Metric::L2, hnsw), Sq8);
    assert_eq!(Off.resolve(768, Metric::Cosine, hnsw), Off);
    let c = CollectionConfig::new(768, Metric::Cosine)
        .with_vector("small", VectorConfig::dense(64, Metric::L2))
        .with_vector("big", VectorConfig::dense(1024, Metric::Dot))
        .with_vector(
            "exact",
            VectorConfig::dense_with_index(1024, Metric::Cosine, IndexKind::Exact),
        )
        .with_vector(
            "chosen",
            VectorConfig::dense_quantized(1024, Metric::Cosine, hnsw, Sq8),
        );
    assert_eq!(c.quantization, Auto);
    assert!(c.validate().is_ok(), "auto is valid before it is resolved");
    let r = c.resolved();
    assert_eq!(r.quantization, Rq4);
    let q = |name: &str| match r.vectors[name] {
        VectorConfig::Dense { quantization, .. } => quantization,
        VectorConfig::Sparse { .. } => unreachable!("dense"),
    };
    assert_eq!(
        [q("small"), q("big"), q("exact"), q("chosen")],
        [Off, Rq4, Off, Sq8]
    );
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("auto"), "auto is never stored: {json}");
    assert_eq!(
        CollectionConfig::named_only().resolved().quantization,
        Off,
        "no default vector, no codes for it"
    );
}

#[test]
fn dims() {
    assert!(CollectionConfig::new(0, Metric::L2).validate().is_err());
    assert!(CollectionConfig::new(4097, Metric::L2).validate().is_err());
    assert!(CollectionConfig::new(4096, Metric::Dot).validate().is_ok());
    let bad_m = IndexKind::Hnsw {
        m: 1,
        ef_construction: 200,
        ef: 64,
    };
    assert!(
        CollectionConfig::new(8, Metric::L2)
            .with_index(bad_m)
            .validate()
            .is_err()
    );
    let bad_efc = IndexKind::Hnsw {
        m: 16,
        ef_construction: 8,
        ef: 64,
    };
    assert!(
        CollectionConfig::new(8, Metric::L2)
            .with_index(bad_efc)
            .validate()
            .is_err()
    );
    let bad_ef = IndexKind::Hnsw {
        m: 16,
        ef_construction: 200,
        ef: 0,
    };
    assert!(
        CollectionConfig::new(8, Metric::L2)
            .with_index(bad_ef)
            .validate()
            .is_err()
    );
    assert!(CollectionConfig::named_only().validate().is_err());
    assert!(
        CollectionConfig::named_only()
            .with_vector("s", VectorConfig::sparse(false))
            .validate()
            .is_ok()
    );
    for bad in ["", "a\nb"] {
        assert!(
            CollectionConfig::new(2, Metric::L2)
                .with_vector(bad, VectorConfig::sparse(false))
                .validate()
                .is_err()
        );
    }
    assert!(
        CollectionConfig::new(2, Metric::L2)
            .with_vector("d", VectorConfig::dense(0, Metric::L2))
            .validate()
            .is_err()
    );
    let json: IndexKind = serde_json::from_str(r#"{"kind":"hnsw","m":8}"#).unwrap();
    assert_eq!(
        json,
        IndexKind::Hnsw {
            m: 8,
            ef_construction: 200,
            ef: 64
        }
    );
}
