//! How an answer writes default vectors: a JSON array of numbers (the default), or, when the
//! request asks for `"vector_format": "base64"`, the vector's little-endian `f32` bytes in
//! standard base64 with padding.
//!
//! The compact form is for readers that move many vectors (the replication sink's copy and
//! catch-up reads): a 384-d vector is 2,048 characters instead of ~4,000, and neither side
//! formats or parses 384 decimal numbers. Bytes are exact: the reader gets the `f32`s the
//! server holds, bit for bit.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

/// How answers write default vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VectorFormat {
    /// A JSON array of numbers.
    #[default]
    Float,
    /// A string: standard base64 (with padding) of the vector's little-endian `f32` bytes.
    Base64,
}

/// A default vector in an answer, written in the asked [`VectorFormat`].
#[derive(Debug, Clone, PartialEq)]
pub struct DenseOut {
    /// The components.
    pub values: Vec<f32>,
    /// How they are written.
    pub format: VectorFormat,
}

/// Standard base64 of `values` as little-endian `f32` bytes.
pub fn base64_of(values: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    STANDARD.encode(bytes)
}

impl Serialize for DenseOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.format {
            VectorFormat::Float => self.values.serialize(s),
            VectorFormat::Base64 => s.serialize_str(&base64_of(&self.values)),
        }
    }
}

/// The OpenAPI schema of [`DenseOut`]: an array of numbers, or a base64 string.
#[derive(Debug, Clone, Copy)]
pub struct DenseOutSchema;

impl utoipa::PartialSchema for DenseOutSchema {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::Number)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Float))),
                    )
                    .title(Some("FloatVector"))
                    .description(Some("The vector's components (`vector_format` `float`)")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
                    .title(Some("Base64Vector"))
                    .description(Some(
                        "Standard base64 (with padding) of the components as little-endian \
                         `f32` bytes, 4 per component (`vector_format` `base64`)",
                    )),
            )
            .description(Some(
                "The default vector, in the `vector_format` the request asked for",
            ))
            .into()
    }
}

impl ToSchema for DenseOutSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("DenseVectorOut")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(values: Vec<f32>, format: VectorFormat) -> String {
        serde_json::to_string(&DenseOut { values, format }).unwrap()
    }

    #[test]
    fn base64_holds_the_exact_little_endian_bytes() {
        let v = vec![1.0f32, -0.1, f32::MIN_POSITIVE, 3.3e38];
        // Numbers by default, reading back to the same f32s.
        let numbers: Vec<f64> = serde_json::from_str(&out(v.clone(), VectorFormat::Float)).unwrap();
        let numbers: Vec<f32> = numbers.into_iter().map(|x| x as f32).collect();
        assert_eq!(numbers, v);
        let s: String = serde_json::from_str(&out(v.clone(), VectorFormat::Base64)).unwrap();
        let bytes = STANDARD.decode(s).unwrap();
        assert_eq!(bytes.len(), 16);
        let back: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(back, v);
        // 1.0f32 is 00 00 80 3f little-endian.
        assert!(base64_of(&[1.0]).starts_with("AACAPw"));
    }

    #[test]
    fn the_format_is_float_unless_asked() {
        assert_eq!(VectorFormat::default(), VectorFormat::Float);
        let f: VectorFormat = serde_json::from_str("\"base64\"").unwrap();
        assert_eq!(f, VectorFormat::Base64);
        assert!(serde_json::from_str::<VectorFormat>("\"hex\"").is_err());
    }
}
