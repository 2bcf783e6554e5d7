//! Payload key paths, as Qdrant writes them: object keys joined by `.`, each optionally
//! followed by array steps — `[n]` (the element at index `n`) or `[]` (every element):
//! `country.cities[0].name`, `tags[]`.
//!
//! Invariant: a path that parses has a non-empty first key and no empty key after a `.`;
//! everything that reads or writes through a path (filters, payload indexes, partial payload
//! updates) parses it here, so they agree on what a path names.

/// One step of a parsed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// A key of an object.
    Key(&'a str),
    /// The element at this index of an array.
    Index(usize),
    /// Every element of an array (`[]`).
    Every,
}

/// The steps of `path`, or why it is not one.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Step<'_>>, &'static str> {
    if path.is_empty() {
        return Err("a path needs at least one key");
    }
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if key.is_empty() || key.contains(']') {
            return Err("every part of a path starts with a non-empty key");
        }
        steps.push(Step::Key(key));
        while !rest.is_empty() {
            if !rest.starts_with('[') {
                return Err("after `]` comes `[`, `.` or the end of the path");
            }
            let Some(close) = rest.find(']') else {
                return Err("an array step `[` has no closing `]`");
            };
            let inside = &rest[1..close];
            steps.push(if inside.is_empty() {
                Step::Every
            } else {
                Step::Index(
                    inside
                        .parse::<usize>()
                        .map_err(|_| "an array step holds a non-negative index or nothing")?,
                )
            });
            rest = &rest[close + 1..];
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_steps() {
        use Step::*;
        assert_eq!(parse_path("a"), Ok(vec![Key("a")]));
        assert_eq!(
            parse_path("a.b[0][].c"),
            Ok(vec![Key("a"), Key("b"), Index(0), Every, Key("c")])
        );
        assert_eq!(parse_path("tags[]"), Ok(vec![Key("tags"), Every]));
        for bad in [
            "", ".a", "a.", "a..b", "[0]", "a[", "a[x]", "a[-1]", "a]", "a[0]b", "a.[0]",
        ] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
    }
}
