//! The filter language: semantics, JSON round trips, hashing, and errors that name the place.

use super::*;

fn p(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn f(v: Value) -> Filter {
    Filter::from_json(&v).unwrap()
}

fn hash_of(filter: &Filter) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    filter.hash(&mut h);
    h.finish()
}

#[test]
fn hash_agrees_with_equality() {
    let a = f(
        json!({"must": [{"key": "x", "range": {"gte": 0.0, "lt": 2.5}}],
                     "should": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
    );
    let b = f(
        json!({"must": [{"key": "x", "range": {"gte": -0.0, "lt": 2.5}}],
                     "should": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
    );
    assert_eq!(a, b, "0.0 and -0.0 are the same bound");
    assert_eq!(hash_of(&a), hash_of(&b));
    let c = f(
        json!({"must": [{"key": "x", "range": {"gte": 0.0, "lt": 2.6}}],
                     "should": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
    );
    assert_ne!(a, c);
    assert_ne!(hash_of(&a), hash_of(&c));
    let moved = f(
        json!({"should": [{"key": "x", "range": {"gte": 0.0, "lt": 2.5}}],
                         "must": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
    );
    assert_ne!(
        hash_of(&a),
        hash_of(&moved),
        "the clause a condition sits in counts"
    );
}

#[test]
fn semantics() {
    let id = EntityId::from_u128(1);
    let doc = p(json!({
        "lang": "en", "year": 2021, "score": 0.5, "tags": ["a", "b"],
        "nested": {"x": [{"y": 1}, {"y": 2}]}, "nothing": null, "empty": [],
        "at": "2024-05-01T12:00:00Z"
    }));
    let yes = [
        json!({"must": [{"key": "lang", "match": {"value": "en"}}]}),
        json!({"must": [{"key": "tags", "match": {"value": "b"}}]}),
        json!({"must": [{"key": "tags", "match": {"any": ["z", "a"]}}]}),
        json!({"must": [{"key": "lang", "match": {"except": ["de", "fr"]}}]}),
        json!({"must": [{"key": "tags", "match": {"except": ["a"]}}]}),
        json!({"must": [{"key": "year", "match": {"except": ["2021", 2020, true]}}]}),
        json!({"must": [{"key": "year", "range": {"gte": 2021, "lt": 2022}}]}),
        json!({"must": [{"key": "score", "range": {"gt": 0.4}}]}),
        json!({"must": [{"key": "nested.x.y", "match": {"value": 2}}]}),
        json!({"must": [{"is_null": {"key": "nothing"}}, {"is_empty": {"key": "empty"}}]}),
        json!({"must": [{"is_empty": {"key": "missing"}}, {"exists": {"key": "lang"}}]}),
        json!({"must": [{"key": "at", "range": {"gte": "2024-01-01T00:00:00Z"}}]}),
        json!({"should": [{"key": "lang", "match": {"value": "de"}}, {"has_id": [id.to_string()]}]}),
        json!({"must_not": [{"must": [{"key": "lang", "match": {"value": "de"}}]}]}),
        json!({}),
    ];
    for y in yes {
        assert!(f(y.clone()).matches(id, &doc), "{y}");
    }
    let no = [
        json!({"must": [{"key": "lang", "match": {"value": "de"}}]}),
        json!({"must": [{"key": "lang", "match": {"except": ["en"]}}]}),
        json!({"must": [{"key": "tags", "match": {"except": ["b", "a"]}}]}),
        json!({"must": [{"key": "year", "match": {"except": [2021]}}]}),
        json!({"must": [{"key": "missing", "match": {"except": ["x"]}}]}),
        json!({"must": [{"key": "nothing", "match": {"except": ["x"]}}]}),
        json!({"must": [{"key": "empty", "match": {"except": ["x"]}}]}),
        json!({"must": [{"key": "year", "range": {"gt": 2021}}]}),
        json!({"must": [{"key": "lang", "range": {"gt": 1}}]}),
        json!({"must": [{"is_null": {"key": "lang"}}]}),
        json!({"must": [{"exists": {"key": "empty"}}]}),
        json!({"must_not": [{"key": "tags", "match": {"value": "a"}}]}),
        json!({"should": [{"key": "lang", "match": {"value": "de"}}]}),
        json!({"must": [{"key": "at", "range": {"lt": "2024-05-01T12:00:00Z"}}]}),
    ];
    for n in no {
        assert!(!f(n.clone()).matches(id, &doc), "{n}");
    }
}

#[test]
fn round_trip() {
    let v = json!({
        "must": [{"key": "a", "match": {"value": "x"}}, {"key": "b", "range": {"gte": 1, "lt": 2.5}}],
        "should": [{"is_null": {"key": "c"}}, {"has_id": [EntityId::from_u128(7).to_string()]}],
        "must_not": [{"must": [{"key": "d", "match": {"any": [1, 2]}}]},
                     {"key": "e", "match": {"except": ["p", 3, false]}}]
    });
    let parsed = f(v.clone());
    assert_eq!(parsed.to_json(), v);
    let via_serde: Filter = serde_json::from_value(v).unwrap();
    assert_eq!(via_serde, parsed);
}

#[test]
fn malformed_filters_name_the_place() {
    let cases = [
        (json!([]), "filter"),
        (json!({"bogus": []}), "bogus"),
        (json!({"must": 3}), "filter.must"),
        (json!({"must": [{"key": "a"}]}), "filter.must[0]"),
        (
            json!({"must": [{"key": "a", "match": {"regex": "x"}}]}),
            "regex",
        ),
        (
            json!({"must": [{"key": "a", "match": {"value": 1.5}}]}),
            "match.value",
        ),
        (json!({"must": [{"key": "a", "range": {}}]}), "range"),
        (
            json!({"must": [{"key": "a", "range": {"gt": 1, "lt": "2024-01-01T00:00:00Z"}}]}),
            "range",
        ),
        (
            json!({"must": [{"key": "a", "range": {"gt": "yesterday"}}]}),
            "range.gt",
        ),
        (
            json!({"must": [{"key": "a", "range": {"near": 1}}]}),
            "near",
        ),
        (json!({"must": [{"has_id": ["nope"]}]}), "has_id[0]"),
        (json!({"must": [{"key": "", "match": {"value": 1}}]}), "key"),
        (
            json!({"must": [{"key": "a..b", "match": {"value": 1}}]}),
            "key",
        ),
        (json!({"must": [{"is_null": "a"}]}), "is_null"),
        (
            json!({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}),
            "range",
        ),
        (json!({"must": [{}]}), "must[0]"),
    ];
    for (v, needle) in cases {
        let e = Filter::from_json(&v).expect_err(&v.to_string());
        assert!(e.to_string().contains(needle), "{v}: {e}");
    }
    let mut deep = json!({});
    for _ in 0..40 {
        deep = json!({"must": [deep]});
    }
    assert!(matches!(
        Filter::from_json(&deep),
        Err(FilterProblem::TooComplex { .. })
    ));
}

#[test]
fn text_and_phrase_match_words_of_string_fields() {
    let id = EntityId::from_u128(1);
    let doc = p(json!({
        "body": "The Quick brown fox, jumping over lazy dogs.",
        "tags": ["red fox", "blue whale"],
        "n": 3
    }));
    let yes = |v: Value| assert!(f(v.clone()).matches(id, &doc), "{v}");
    let no = |v: Value| assert!(!f(v.clone()).matches(id, &doc), "{v}");
    yes(json!({"must": [{"key": "body", "match": {"text": "fox QUICK"}}]}));
    no(json!({"must": [{"key": "body", "match": {"text": "fox cat"}}]}));
    yes(json!({"must": [{"key": "body", "match": {"phrase": "quick brown"}}]}));
    no(json!({"must": [{"key": "body", "match": {"phrase": "brown quick"}}]}));
    yes(json!({"must": [{"key": "tags", "match": {"phrase": "blue whale"}}]}));
    no(json!({"must": [{"key": "tags", "match": {"text": "red whale"}}]}));
    no(json!({"must": [{"key": "n", "match": {"text": "3"}}]}));
    no(json!({"must": [{"key": "missing", "match": {"text": "fox"}}]}));
    // Round trip and refusals that name the place.
    let t = f(json!({"must": [{"key": "body", "match": {"phrase": "lazy dogs"}}]}));
    assert_eq!(Filter::from_json(&t.to_json()).unwrap(), t);
    for (bad, at) in [
        (
            json!({"must": [{"key": "b", "match": {"text": " ,. "}}]}),
            "must[0].match.text",
        ),
        (
            json!({"must": [{"key": "b", "match": {"phrase": 3}}]}),
            "must[0].match.phrase",
        ),
        (
            json!({"must": [{"key": "b", "match": {"text": "a", "value": "a"}}]}),
            "must[0].match",
        ),
    ] {
        let e = Filter::from_json(&bad).unwrap_err();
        assert!(e.to_string().contains(at), "{bad}: {e}");
    }
}

#[test]
fn array_element_keys_mean_every_element() {
    let doc = p(json!({"metadata": {"tags": ["apple", "pear"], "items": [{"n": 1}, {"n": 5}]}}));
    let id = EntityId::from_u128(1);
    let brackets = f(json!({"must": [{"key": "metadata.tags[]", "match": {"value": "apple"}}]}));
    let plain = f(json!({"must": [{"key": "metadata.tags", "match": {"value": "apple"}}]}));
    assert_eq!(brackets, plain, "`tags[]` is `tags`");
    assert!(brackets.matches(id, &doc));
    let nested = f(json!({"must": [{"key": "metadata.items[].n", "range": {"gte": 5}}]}));
    assert!(nested.matches(id, &doc));
    let miss = f(json!({"must": [{"key": "metadata.items[].n", "range": {"gt": 5}}]}));
    assert!(!miss.matches(id, &doc));
    for bad in ["a[x].b", "[]", "a.[]", "a[0", "a[-1]"] {
        let err = Filter::from_json(&json!({"must": [{"key": bad, "match": {"value": 1}}]}));
        assert!(
            matches!(err, Err(FilterProblem::Malformed { .. })),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn element_indexes_reach_one_element() {
    let doc =
        p(json!({"items": [{"n": 1, "t": ["x", "y"]}, {"n": 5}], "tags": ["a", "b"], "s": 3}));
    let id = EntityId::from_u128(1);
    let holds = |key: &str, v: serde_json::Value| {
        f(json!({"must": [{"key": key, "match": {"value": v}}]})).matches(id, &doc)
    };
    assert!(holds("items[0].n", json!(1)) && !holds("items[0].n", json!(5)));
    assert!(holds("items[1].n", json!(5)) && !holds("items[1].n", json!(1)));
    assert!(holds("tags[1]", json!("b")) && !holds("tags[1]", json!("a")));
    assert!(
        holds("items[0].t", json!("y")),
        "an array at the end is flattened"
    );
    assert!(holds("items[0].t[0]", json!("x")) && !holds("items[0].t[0]", json!("y")));
    assert!(!holds("items[2].n", json!(1)), "past the end");
    assert!(!holds("s[0]", json!(3)), "not an array");
    assert!(holds("items[].n", json!(5)), "`[]` is every element");
    let count = |key: &str, n: u64| {
        f(json!({"must": [{"key": key, "values_count": {"gte": n, "lte": n}}]})).matches(id, &doc)
    };
    assert!(count("items[0].t", 2) && count("tags[0]", 1) && count("items[1].t", 0));
    // The key keeps its index through the JSON form.
    let g = f(json!({"must": [{"key": "items[].t[0]", "match": {"value": "x"}}]}));
    assert_eq!(g.to_json()["must"][0]["key"], "items.t[0]");
    assert_eq!(f(g.to_json()), g);
}

#[test]
fn geo_conditions_read_points_and_arrays_of_points() {
    let id = EntityId::from_u128(1);
    let doc = p(json!({"home": {"lon": 13.4, "lat": 52.5},
                       "trips": [{"lon": 2.35, "lat": 48.86}, {"lon": -0.13, "lat": 51.5}],
                       "bad": {"lon": 13.4}, "text": "Berlin"}));
    let near = |key: &str, lon: f64, lat: f64, m: f64| {
        f(
            json!({"must": [{"key": key, "geo_radius": {"center": {"lon": lon, "lat": lat}, "radius": m}}]}),
        )
    };
    assert!(near("home", 13.4, 52.5, 1.0).matches(id, &doc));
    assert!(!near("home", 2.35, 48.86, 100_000.0).matches(id, &doc));
    assert!(
        near("trips", 2.35, 48.86, 100.0).matches(id, &doc),
        "any element"
    );
    assert!(near("trips[1]", -0.13, 51.5, 100.0).matches(id, &doc));
    assert!(!near("trips[1]", 2.35, 48.86, 100.0).matches(id, &doc));
    for key in ["bad", "text", "missing"] {
        assert!(!near(key, 13.4, 52.5, 1e7).matches(id, &doc), "{key}");
    }
    let g = near("home", 13.4, 52.5, 1.0);
    assert_eq!(f(g.to_json()), g, "the JSON form round-trips");
    let err = Filter::from_json(&json!({"must": [{"key": "home",
        "geo_radius": {"center": {"lon": 0, "lat": 95}, "radius": 1}}]}));
    assert!(
        matches!(err, Err(FilterProblem::InvalidGeo { .. })),
        "{err:?}"
    );
}

#[test]
fn min_should_values_count_and_nested_follow_qdrant() {
    let id = EntityId::from_u128(1);
    let doc = p(json!({
        "tags": ["a", "b", "c"], "one": "x", "nothing": null,
        "diet": [{"food": "meat", "likes": true}, {"food": "leaves", "likes": false}]
    }));
    let yes = [
        json!({"min_should": {"conditions": [
            {"key": "tags", "match": {"value": "a"}}, {"key": "tags", "match": {"value": "z"}},
            {"key": "one", "match": {"value": "x"}}], "min_count": 2}}),
        json!({"must": [{"key": "tags", "values_count": {"gt": 2, "lte": 3}}]}),
        json!({"must": [{"key": "one", "values_count": {"lt": 2, "gte": 1}}]}),
        json!({"must": [{"key": "missing", "values_count": {"lt": 1}}]}),
        json!({"must": [{"key": "nothing", "values_count": {"lte": 0}}]}),
        json!({"must": [{"nested": {"key": "diet", "filter": {"must": [
            {"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": true}}]}}}]}),
        json!({"must": [{"key": "diet[].food", "match": {"value": "leaves"}}, {"key": "diet[].likes", "match": {"value": true}}]}),
    ];
    for y in yes {
        let parsed = f(y.clone());
        assert!(parsed.matches(id, &doc), "{y}");
        assert_eq!(f(parsed.to_json()), parsed, "round trip of {y}");
    }
    let no = [
        json!({"min_should": {"conditions": [
            {"key": "tags", "match": {"value": "a"}}, {"key": "tags", "match": {"value": "z"}},
            {"key": "one", "match": {"value": "y"}}], "min_count": 2}}),
        json!({"min_should": {"conditions": [{"key": "one", "match": {"value": "x"}}], "min_count": 2}}),
        json!({"must": [{"key": "tags", "values_count": {"gt": 3}}]}),
        json!({"must": [{"key": "missing", "values_count": {"gte": 1}}]}),
        // Both hold, but for different elements.
        json!({"must": [{"nested": {"key": "diet", "filter": {"must": [
            {"key": "food", "match": {"value": "leaves"}}, {"key": "likes", "match": {"value": true}}]}}}]}),
        json!({"must": [{"nested": {"key": "one", "filter": {"must": [{"is_empty": {"key": "q"}}]}}}]}),
    ];
    for n in no {
        assert!(!f(n.clone()).matches(id, &doc), "{n}");
    }
    for (bad, place) in [
        (
            json!({"min_should": {"conditions": [], "min_count": 0}}),
            "min_count",
        ),
        (
            json!({"must": [{"key": "a", "values_count": {"gt": -1}}]}),
            "values_count.gt",
        ),
        (
            json!({"must": [{"key": "a", "values_count": {}}]}),
            "values_count",
        ),
        (
            json!({"must": [{"nested": {"key": "d", "filter": {"must": [{"has_id": [EntityId::from_u128(2).to_string()]}]}}}]}),
            "nested.filter",
        ),
    ] {
        let e = Filter::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains(place), "{bad}: {e}");
    }
}
