//! The JSON shapes of named vectors: their declarations (dense or sparse) and their values
//! (an array of numbers, or `{"indices": [...], "values": [...]}`).
//!
//! Values are read through [`NamedVectorIn`], whose decoding names what is wrong (a dense
//! component that is not a number, a sparse vector missing `values` or holding an unknown
//! key) instead of serde's "did not match any variant of untagged enum". The checks that
//! need the collection (dimension, kind, sorted indices, finite values) are the library's,
//! and answer `invalid_entity` / `invalid_query` naming the vector.

use std::collections::BTreeMap;

use hybridb::{IndexKind, NamedVector, Quantization, SparseVector, VectorConfig};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};

use super::{IndexSpec, MetricSpec, index_kind, metric};

/// A named vector's declaration: dense (its own dimension, metric and index) or sparse
/// (`idf`: weigh query dimensions by inverse document frequency, Qdrant's `idf` modifier).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[schema(example = json!({"type": "dense", "dim": 384, "metric": "cosine"}))]
pub enum VectorSpec {
    /// A dense `f32` vector.
    #[schema(title = "DenseVectorSpec")]
    Dense {
        /// Dimension, 1..=4096.
        dim: u32,
        /// Metric. Default `cosine`.
        #[serde(default)]
        metric: MetricSpec,
        /// Index. Default HNSW with m 16, ef_construction 200, ef 64.
        #[serde(default)]
        index: Option<IndexSpec>,
        /// Codes the HNSW walk ranks by. Default `auto` (`rq4` from 384 dimensions on an
        /// HNSW index under cosine, dot or L2, else `none`); a stored config leaves out `none`.
        #[serde(default, skip_serializing_if = "QuantizationSpec::is_none")]
        quantization: QuantizationSpec,
    },
    /// A sparse vector, scored by dot product.
    #[schema(title = "SparseVectorSpec")]
    Sparse {
        /// Weigh each query dimension by its inverse document frequency in the collection.
        /// Default false.
        #[serde(default)]
        idf: bool,
    },
}

impl VectorSpec {
    /// The library's declaration.
    pub fn to_config(self) -> VectorConfig {
        match self {
            VectorSpec::Dense {
                dim,
                metric: m,
                index,
                quantization,
            } => VectorConfig::dense_quantized(
                dim,
                metric(m),
                index.map_or_else(IndexKind::default, index_kind),
                quantization.quantization(),
            ),
            VectorSpec::Sparse { idf } => VectorConfig::sparse(idf),
        }
    }
}

/// Codes an HNSW walk ranks by, the best `k × oversampling` rescored with the `f32` vectors
/// (the library's `Quantization`; `docs/quantization.md`). Rotated codes (`rq*`) are refused
/// with the Manhattan metric, and every code with an exact index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuantizationSpec {
    /// The engine chooses when the collection is created: `rq4` for an HNSW-indexed vector
    /// of 384 or more dimensions under cosine, dot or L2, else `none`. The default.
    #[default]
    Auto,
    /// `f32` vectors only.
    None,
    /// 8 bits per dimension.
    Sq8,
    /// Rotated 1-bit codes.
    Rq1,
    /// Rotated 2-bit codes.
    Rq2,
    /// Rotated 4-bit codes.
    Rq4,
}

impl QuantizationSpec {
    /// Whether this is `none`.
    pub fn is_none(&self) -> bool {
        *self == QuantizationSpec::None
    }

    /// The library's value.
    pub fn quantization(self) -> Quantization {
        match self {
            QuantizationSpec::Auto => Quantization::Auto,
            QuantizationSpec::None => Quantization::None,
            QuantizationSpec::Sq8 => Quantization::Sq8,
            QuantizationSpec::Rq1 => Quantization::Rq1,
            QuantizationSpec::Rq2 => Quantization::Rq2,
            QuantizationSpec::Rq4 => Quantization::Rq4,
        }
    }
}

/// The OpenAPI schema of a sparse vector (named `SparseVector`).
#[derive(Debug, Clone, Copy)]
pub struct SparseVectorSchema;

impl utoipa::PartialSchema for SparseVectorSchema {
    fn schema() -> RefOr<Schema> {
        let numbers = |t: Type, what: &str| {
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(t))
                .description(Some(what))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A sparse vector: `values[i]` is the weight of dimension `indices[i]`. Indices \
                 strictly increase (no repeats); values are finite.",
            ))
            .property(
                "indices",
                numbers(Type::Integer, "Dimensions (u32), strictly increasing"),
            )
            .property("values", numbers(Type::Number, "Their weights, one each"))
            .required("indices")
            .required("values")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .examples([serde_json::json!({"indices": [7, 42], "values": [1.0, 0.5]})])
            .into()
    }
}

impl ToSchema for SparseVectorSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("SparseVector")
    }
}

/// The OpenAPI schema of a named vector's value (named `NamedVector`): dense or sparse.
#[derive(Debug, Clone, Copy)]
pub struct NamedVectorSchema;

impl utoipa::PartialSchema for NamedVectorSchema {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::Number))
                    .title(Some("DenseVector"))
                    .description(Some(
                        "A dense vector: the named vector's dimension of numbers",
                    )),
            )
            .item(Ref::from_schema_name("SparseVector"))
            .description(Some(
                "A named vector's value: an array of numbers (dense) or `{indices, values}` \
                 (sparse), of the kind the collection declares under that name.",
            ))
            .into()
    }
}

impl ToSchema for NamedVectorSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("NamedVector")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("SparseVector".into(), SparseVectorSchema::schema()));
    }
}

/// A named vector's value as a request carries it, decoded with errors that say what is
/// wrong (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedVectorIn(pub NamedVector);

/// What a named vector's value must look like.
const VECTOR_FORMS: &str =
    "expected an array of numbers (dense) or {\"indices\": [...], \"values\": [...]} (sparse)";

/// Reads a sparse vector from its JSON object, naming what is wrong.
pub(crate) fn sparse_of(m: &serde_json::Map<String, Value>) -> Result<SparseVector, String> {
    if let Some(k) = m.keys().find(|k| *k != "indices" && *k != "values") {
        return Err(format!(
            "unknown field `{k}` in a sparse vector: expected `indices` and `values`"
        ));
    }
    let list = |key: &str| match m.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("sparse vector `{key}`: expected an array")),
        None => Err(format!("sparse vector: missing field `{key}`")),
    };
    let indices = list("indices")?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    format!(
                        "sparse vector `indices[{i}]`: expected an integer 0..=4294967295, got {x}"
                    )
                })
        })
        .collect::<Result<Vec<u32>, String>>()?;
    let values = list("values")?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| format!("sparse vector `values[{i}]`: expected a number, got {x}"))
        })
        .collect::<Result<Vec<f32>, String>>()?;
    Ok(SparseVector::new(indices, values))
}

/// Reads a dense vector from its JSON array, naming a component that is not a number.
fn dense_of(items: &[Value]) -> Result<Vec<f32>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| format!("component {i}: expected a number, got {x}"))
        })
        .collect()
}

impl<'de> Deserialize<'de> for NamedVectorIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Array(items) => dense_of(&items)
                .map(|v| NamedVectorIn(NamedVector::Dense(v)))
                .map_err(D::Error::custom),
            Value::Object(m) => sparse_of(&m)
                .map(|v| NamedVectorIn(NamedVector::Sparse(v)))
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!("{VECTOR_FORMS}, got {other}"))),
        }
    }
}

/// A sparse query vector as a request carries it (same decoding as [`NamedVectorIn`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseIn(pub SparseVector);

impl<'de> Deserialize<'de> for SparseIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(m) => sparse_of(&m).map(SparseIn).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected {{\"indices\": [...], \"values\": [...]}}, got {other}"
            ))),
        }
    }
}

/// The library's named vectors of a request's `vectors` map.
pub(crate) fn named(vectors: BTreeMap<String, NamedVectorIn>) -> BTreeMap<String, NamedVector> {
    vectors.into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// Body of `PUT /collections/{name}/quantization`: the codes a dense vector's HNSW walk ranks
/// by, changed online (the same setting retrains them).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"vector": "", "quantization": "rq4"}))]
pub struct QuantizationChange {
    /// The dense vector: a named one, or `""` (the default) for the collection's default
    /// vector.
    #[serde(default)]
    pub vector: String,
    /// The codes; `none` drops them.
    pub quantization: QuantizationSpec,
}

/// Answer of the named-vector routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorOut {
    /// The vector's name.
    pub name: String,
    /// Whether anything changed (false: the same declaration existed already).
    pub changed: bool,
    /// The collection's configuration after the change.
    #[schema(value_type = super::ConfigOut)]
    pub config: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: Value) -> Result<NamedVectorIn, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn values_decode_with_errors_that_say_what_is_wrong() {
        assert_eq!(
            read(serde_json::json!([1, 2.5])).unwrap().0,
            NamedVector::Dense(vec![1.0, 2.5])
        );
        assert_eq!(
            read(serde_json::json!({"indices": [3, 9], "values": [0.5, 1]}))
                .unwrap()
                .0,
            NamedVector::Sparse(SparseVector::new(vec![3, 9], vec![0.5, 1.0]))
        );
        for (bad, words) in [
            (
                serde_json::json!([1, "x"]),
                "component 1: expected a number",
            ),
            (
                serde_json::json!({"indices": [1]}),
                "missing field `values`",
            ),
            (
                serde_json::json!({"indices": [-1], "values": [1]}),
                "indices[0]",
            ),
            (
                serde_json::json!({"indices": [1], "values": [1], "x": 1}),
                "unknown field `x`",
            ),
            (serde_json::json!("no"), "expected an array of numbers"),
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.contains(words), "{e}");
        }
    }

    #[test]
    fn declarations_decode_and_refuse_unknown_fields() {
        let d: VectorSpec =
            serde_json::from_value(serde_json::json!({"type": "dense", "dim": 3})).unwrap();
        assert_eq!(
            d.to_config(),
            VectorConfig::dense(3, hybridb::Metric::Cosine)
        );
        let s: VectorSpec =
            serde_json::from_value(serde_json::json!({"type": "sparse", "idf": true})).unwrap();
        assert_eq!(s.to_config(), VectorConfig::sparse(true));
        assert!(
            serde_json::from_value::<VectorSpec>(serde_json::json!({"type": "sparse", "dim": 3}))
                .is_err()
        );
        assert!(serde_json::from_value::<VectorSpec>(serde_json::json!({"dim": 3})).is_err());
    }
}
