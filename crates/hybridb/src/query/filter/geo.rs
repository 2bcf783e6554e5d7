//! Geo conditions, with Qdrant's semantics: a payload value `{"lon": x, "lat": y}` (or an
//! array of them) lies within a radius (haversine distance in meters on a sphere of the
//! Earth's mean radius, strictly less than the radius), a bounding box (strictly inside;
//! `top_left.lon > bottom_right.lon` crosses the antimeridian) or a polygon (strictly inside
//! the exterior ring and outside every interior ring, in plane `lon`/`lat` coordinates).
//!
//! Invariant: every [`GeoShape`] built by the parser has coordinates within `lon` −180..=180
//! and `lat` −90..=90, a finite non-negative radius, and closed rings of at least 4 points;
//! anything else is refused with [`FilterProblem::InvalidGeo`]. Payload values that are not
//! valid points simply do not match.

use serde_json::{Map, Value, json};

use crate::model::error::FilterProblem;

/// The Earth's mean radius in meters (IUGG), the radius Qdrant's haversine distance uses.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point on the Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Longitude, −180..=180.
    pub lon: f64,
    /// Latitude, −90..=90.
    pub lat: f64,
}

/// The area a geo condition tests for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GeoShape {
    /// Points closer than `radius` meters to `center` (Qdrant's `geo_radius`).
    Radius {
        /// The center.
        center: GeoPoint,
        /// Meters.
        radius: f64,
    },
    /// Points strictly inside the box (Qdrant's `geo_bounding_box`).
    BoundingBox {
        /// Its north-west corner.
        top_left: GeoPoint,
        /// Its south-east corner.
        bottom_right: GeoPoint,
    },
    /// Points strictly inside `exterior` and outside every ring of `interiors` (Qdrant's
    /// `geo_polygon`). Rings are closed: the first point equals the last.
    Polygon {
        /// The outer ring.
        exterior: Vec<GeoPoint>,
        /// Holes.
        interiors: Vec<Vec<GeoPoint>>,
    },
}

impl std::hash::Hash for GeoPoint {
    /// Consistent with `==` (a zero hashes the same whatever its sign).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for x in [self.lon, self.lat] {
            (if x == 0.0 { 0 } else { x.to_bits() }).hash(state);
        }
    }
}

impl std::hash::Hash for GeoShape {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            GeoShape::Radius { center, radius } => {
                center.hash(state);
                (if *radius == 0.0 { 0 } else { radius.to_bits() }).hash(state);
            }
            GeoShape::BoundingBox {
                top_left,
                bottom_right,
            } => {
                top_left.hash(state);
                bottom_right.hash(state);
            }
            GeoShape::Polygon {
                exterior,
                interiors,
            } => {
                exterior.hash(state);
                interiors.hash(state);
            }
        }
    }
}

impl GeoPoint {
    /// A point; `None` when a coordinate is out of range (or not finite).
    pub fn new(lon: f64, lat: f64) -> Option<GeoPoint> {
        ((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat))
            .then_some(GeoPoint { lon, lat })
    }

    /// The point a payload value holds: an object with numbers `lon` and `lat` in range.
    pub fn from_payload(v: &Value) -> Option<GeoPoint> {
        let m = v.as_object()?;
        GeoPoint::new(m.get("lon")?.as_f64()?, m.get("lat")?.as_f64()?)
    }

    /// Haversine distance to `other`, in meters.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = (other.lat - self.lat).to_radians();
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * a.sqrt().asin() * EARTH_RADIUS_M
    }

    fn to_json(self) -> Value {
        json!({"lon": self.lon, "lat": self.lat})
    }
}

impl GeoShape {
    /// The JSON operator name (`geo_radius`, `geo_bounding_box`, `geo_polygon`).
    pub fn operator(&self) -> &'static str {
        match self {
            GeoShape::Radius { .. } => "geo_radius",
            GeoShape::BoundingBox { .. } => "geo_bounding_box",
            GeoShape::Polygon { .. } => "geo_polygon",
        }
    }

    /// Whether `p` lies in the area.
    pub fn contains(&self, p: &GeoPoint) -> bool {
        match self {
            GeoShape::Radius { center, radius } => center.distance_m(p) < *radius,
            GeoShape::BoundingBox {
                top_left: tl,
                bottom_right: br,
            } => {
                let lon = if tl.lon > br.lon {
                    p.lon > tl.lon || p.lon < br.lon
                } else {
                    tl.lon < p.lon && p.lon < br.lon
                };
                lon && br.lat < p.lat && p.lat < tl.lat
            }
            GeoShape::Polygon {
                exterior,
                interiors,
            } => {
                !on_ring(exterior, p)
                    && in_ring(exterior, p)
                    && interiors.iter().all(|h| !on_ring(h, p) && !in_ring(h, p))
            }
        }
    }

    /// Whether any point a payload value holds (a point or an array of points, as flattened
    /// by the key's walk) lies in the area.
    pub(crate) fn matches_value(&self, v: &Value) -> bool {
        GeoPoint::from_payload(v).is_some_and(|p| self.contains(&p))
    }

    /// The JSON form of the area (the value under [`GeoShape::operator`]).
    pub fn to_json(&self) -> Value {
        let ring =
            |r: &[GeoPoint]| json!({"points": r.iter().map(|p| p.to_json()).collect::<Vec<_>>()});
        match self {
            GeoShape::Radius { center, radius } => {
                json!({"center": center.to_json(), "radius": radius})
            }
            GeoShape::BoundingBox {
                top_left,
                bottom_right,
            } => json!({"top_left": top_left.to_json(), "bottom_right": bottom_right.to_json()}),
            GeoShape::Polygon {
                exterior,
                interiors,
            } => json!({
                "exterior": ring(exterior),
                "interiors": interiors.iter().map(|r| ring(r)).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Whether `p` lies on a segment of the closed ring.
fn on_ring(ring: &[GeoPoint], p: &GeoPoint) -> bool {
    ring.windows(2).any(|w| {
        let (a, b) = (w[0], w[1]);
        let cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon);
        cross == 0.0
            && p.lon >= a.lon.min(b.lon)
            && p.lon <= a.lon.max(b.lon)
            && p.lat >= a.lat.min(b.lat)
            && p.lat <= a.lat.max(b.lat)
    })
}

/// Whether `p` lies inside the closed ring (even-odd rule; a point on the ring may go
/// either way, so callers test [`on_ring`] first).
fn in_ring(ring: &[GeoPoint], p: &GeoPoint) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.lat > p.lat) != (b.lat > p.lat) {
            let lon_at = a.lon + (p.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon);
            if p.lon < lon_at {
                inside = !inside;
            }
        }
    }
    inside
}

fn problem(path: &str, reason: impl Into<String>) -> FilterProblem {
    FilterProblem::Malformed {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn object<'a>(
    v: &'a Value,
    path: &str,
    keys: &[&str],
) -> Result<&'a Map<String, Value>, FilterProblem> {
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!("expected an object with {}", keys.join(", ")),
        ));
    };
    if let Some(extra) = m.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(FilterProblem::UnknownOperator {
            path: path.to_string(),
            operator: extra.clone(),
        });
    }
    Ok(m)
}

fn point(v: Option<&Value>, path: &str) -> Result<GeoPoint, FilterProblem> {
    let v = v.ok_or_else(|| problem(path, "missing"))?;
    let m = object(v, path, &["lon", "lat"])?;
    let num = |k: &str| {
        m.get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| problem(&format!("{path}.{k}"), "expected a number"))
    };
    let (lon, lat) = (num("lon")?, num("lat")?);
    GeoPoint::new(lon, lat).ok_or_else(|| FilterProblem::InvalidGeo {
        path: path.to_string(),
        reason: format!(
            "expected `lat` = {lat} within [-90;90] and `lon` = {lon} within [-180;180]"
        ),
    })
}

fn ring(v: &Value, path: &str) -> Result<Vec<GeoPoint>, FilterProblem> {
    let m = object(v, path, &["points"])?;
    let here = format!("{path}.points");
    let Some(Value::Array(items)) = m.get("points") else {
        return Err(problem(&here, "expected a list of points"));
    };
    let points = items
        .iter()
        .enumerate()
        .map(|(i, p)| point(Some(p), &format!("{here}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if points.len() < 4 {
        return Err(FilterProblem::InvalidGeo {
            path: here,
            reason: format!(
                "polygon invalid, the size must be at least 4, got {}",
                points.len()
            ),
        });
    }
    if points.first() != points.last() {
        return Err(FilterProblem::InvalidGeo {
            path: here,
            reason: "polygon invalid, the first and the last points should be the same to form \
                     a closed line"
                .into(),
        });
    }
    Ok(points)
}

/// Reads the value of a geo operator `op` (`geo_radius`, `geo_bounding_box`, `geo_polygon`);
/// `None` when `op` is not one.
pub(super) fn parse(op: &str, v: &Value, path: &str) -> Option<Result<GeoShape, FilterProblem>> {
    let shape = match op {
        "geo_radius" => (|| {
            let m = object(v, path, &["center", "radius"])?;
            let center = point(m.get("center"), &format!("{path}.center"))?;
            let here = format!("{path}.radius");
            let radius = m
                .get("radius")
                .and_then(Value::as_f64)
                .ok_or_else(|| problem(&here, "expected a number of meters"))?;
            if radius.is_nan() || radius < 0.0 {
                return Err(FilterProblem::InvalidGeo {
                    path: here,
                    reason: format!("a radius is a non-negative number of meters, got {radius}"),
                });
            }
            Ok(GeoShape::Radius { center, radius })
        })(),
        "geo_bounding_box" => (|| {
            let m = object(v, path, &["top_left", "bottom_right"])?;
            Ok(GeoShape::BoundingBox {
                top_left: point(m.get("top_left"), &format!("{path}.top_left"))?,
                bottom_right: point(m.get("bottom_right"), &format!("{path}.bottom_right"))?,
            })
        })(),
        "geo_polygon" => (|| {
            let m = object(v, path, &["exterior", "interiors"])?;
            let exterior = match m.get("exterior") {
                Some(e) => ring(e, &format!("{path}.exterior"))?,
                None => return Err(problem(&format!("{path}.exterior"), "missing")),
            };
            let interiors = match m.get("interiors") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(rings)) => rings
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ring(r, &format!("{path}.interiors[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err(problem(
                        &format!("{path}.interiors"),
                        "expected a list of rings",
                    ));
                }
            };
            Ok(GeoShape::Polygon {
                exterior,
                interiors,
            })
        })(),
        _ => return None,
    };
    Some(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lon: f64, lat: f64) -> GeoPoint {
        GeoPoint::new(lon, lat).unwrap()
    }

    #[test]
    fn haversine_is_qdrants() {
        // Qdrant's own test values (lib/segment types.rs): (0, 0) to (0.5, 0.5).
        let d = p(0.0, 0.0).distance_m(&p(0.5, 0.5));
        assert!((d - 78_626.296_279_990_48).abs() < 1e-6, "{d}");
        // Berlin to Moscow, about 1,608 km.
        let d = p(13.4050, 52.5200).distance_m(&p(37.6173, 55.7558));
        assert!((1_600_000.0..1_615_000.0).contains(&d), "{d}");
        let r = GeoShape::Radius {
            center: p(0.0, 0.0),
            radius: 78_627.0,
        };
        assert!(r.contains(&p(0.5, 0.5)));
        assert!(!r.contains(&p(0.5, 0.51)));
    }

    #[test]
    fn boxes_are_open_and_cross_the_antimeridian() {
        let b = GeoShape::BoundingBox {
            top_left: p(10.0, 50.0),
            bottom_right: p(20.0, 40.0),
        };
        assert!(b.contains(&p(15.0, 45.0)));
        assert!(!b.contains(&p(10.0, 45.0)) && !b.contains(&p(15.0, 50.0)));
        assert!(!b.contains(&p(25.0, 45.0)));
        let wrap = GeoShape::BoundingBox {
            top_left: p(170.0, 10.0),
            bottom_right: p(-170.0, -10.0),
        };
        assert!(wrap.contains(&p(179.0, 0.0)) && wrap.contains(&p(-175.0, 0.0)));
        assert!(!wrap.contains(&p(0.0, 0.0)));
    }

    #[test]
    fn polygons_exclude_their_boundary_and_holes() {
        let sq = |a: f64, b: f64| vec![p(a, a), p(b, a), p(b, b), p(a, b), p(a, a)];
        let poly = GeoShape::Polygon {
            exterior: sq(0.0, 10.0),
            interiors: vec![sq(4.0, 6.0)],
        };
        assert!(poly.contains(&p(1.0, 1.0)) && poly.contains(&p(9.0, 5.0)));
        assert!(!poly.contains(&p(5.0, 5.0)), "in the hole");
        assert!(!poly.contains(&p(4.0, 5.0)), "on the hole's ring");
        assert!(!poly.contains(&p(0.0, 5.0)), "on the exterior");
        assert!(!poly.contains(&p(11.0, 5.0)));
    }

    #[test]
    fn bad_shapes_are_refused_with_their_place() {
        let bad = |op: &str, v: Value| parse(op, &v, "f").unwrap().unwrap_err();
        assert!(matches!(
            bad("geo_radius", json!({"center": {"lon": 200, "lat": 0}, "radius": 1})),
            FilterProblem::InvalidGeo { path, .. } if path == "f.center"
        ));
        assert!(matches!(
            bad(
                "geo_radius",
                json!({"center": {"lon": 0, "lat": 0}, "radius": -1})
            ),
            FilterProblem::InvalidGeo { .. }
        ));
        let open = json!({"exterior": {"points": [
            {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 1}]}});
        assert!(matches!(
            bad("geo_polygon", open),
            FilterProblem::InvalidGeo { .. }
        ));
        let short = json!({"exterior": {"points": [
            {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 0, "lat": 0}]}});
        assert!(matches!(
            bad("geo_polygon", short),
            FilterProblem::InvalidGeo { .. }
        ));
        assert!(matches!(
            bad(
                "geo_bounding_box",
                json!({"top_left": {"lon": 0, "lat": 91}, "bottom_right": {"lon": 0, "lat": 0}})
            ),
            FilterProblem::InvalidGeo { .. }
        ));
        assert!(matches!(
            bad("geo_bounding_box", json!({"top_left": {"lon": 0}})),
            FilterProblem::UnknownOperator { .. } | FilterProblem::Malformed { .. }
        ));
        assert!(parse("geo_nope", &json!({}), "f").is_none());
    }
}
