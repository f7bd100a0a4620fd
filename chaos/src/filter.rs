//! Path filters such as `root/workers/*`: which children a chaos monkey may
//! pick, and which fault points a rule applies to.

use std::fmt;
use std::str::FromStr;

/// A pattern over `/`-separated paths.
///
/// A segment is matched literally, except `*`, which matches any one segment,
/// and `**`, which matches any number of segments (none included). A segment
/// may also end with `*` to match a prefix (`worker-*`).
///
/// ```
/// use warden_chaos::PathFilter;
///
/// let workers: PathFilter = "root/workers/*".parse().unwrap();
/// assert!(workers.matches("root/workers/w-1"));
/// assert!(!workers.matches("root/workers"));
/// assert!(!workers.matches("root/workers/pool/w-1"));
///
/// let anything_below: PathFilter = "root/**".parse().unwrap();
/// assert!(anything_below.matches("root/workers/pool/w-1"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PathFilter {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Prefix(String),
    One,
    Any,
}

/// A pattern that cannot be a [`PathFilter`]. Permanent: fix the pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid path filter {pattern:?}: {problem}")]
pub struct FilterError {
    pattern: String,
    problem: &'static str,
}

impl PathFilter {
    /// Parses a pattern. See the type's docs for the syntax.
    ///
    /// # Errors
    ///
    /// [`FilterError`] for an empty pattern or an empty segment (`a//b`).
    pub fn new(pattern: &str) -> Result<Self, FilterError> {
        let error = |problem| FilterError {
            pattern: pattern.to_owned(),
            problem,
        };
        if pattern.is_empty() {
            return Err(error("empty pattern"));
        }
        let mut segments = Vec::new();
        for part in pattern.split('/') {
            segments.push(match part {
                "" => return Err(error("empty segment")),
                "**" => Segment::Any,
                "*" => Segment::One,
                _ => match part.strip_suffix('*') {
                    Some(prefix) if !prefix.contains('*') => Segment::Prefix(prefix.to_owned()),
                    _ if part.contains('*') => return Err(error("`*` only as a whole segment or at its end")),
                    _ => Segment::Literal(part.to_owned()),
                },
            });
        }
        Ok(Self {
            source: pattern.to_owned(),
            segments,
        })
    }

    /// A filter that matches every path.
    pub fn everything() -> Self {
        Self {
            source: "**".to_owned(),
            segments: vec![Segment::Any],
        }
    }

    /// True if `path` matches the pattern.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        matches_from(&self.segments, &parts)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn matches_from(segments: &[Segment], parts: &[&str]) -> bool {
    match segments.split_first() {
        None => parts.is_empty(),
        Some((Segment::Any, rest)) => (0..=parts.len()).any(|skip| matches_from(rest, &parts[skip..])),
        Some((segment, rest)) => match parts.split_first() {
            None => false,
            Some((part, tail)) => {
                let hit = match segment {
                    Segment::Literal(literal) => part == literal,
                    Segment::Prefix(prefix) => part.starts_with(prefix.as_str()),
                    Segment::One => true,
                    Segment::Any => unreachable!("handled above"),
                };
                hit && matches_from(rest, tail)
            }
        },
    }
}

impl FromStr for PathFilter {
    type Err = FilterError;

    fn from_str(pattern: &str) -> Result<Self, FilterError> {
        Self::new(pattern)
    }
}

impl fmt::Display for PathFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for PathFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathFilter({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::PathFilter;

    fn filter(pattern: &str) -> PathFilter {
        pattern.parse().unwrap()
    }

    #[test]
    fn literal_segments_match_exactly() {
        assert!(filter("root/a").matches("root/a"));
        assert!(!filter("root/a").matches("root/ab"));
        assert!(!filter("root/a").matches("root/a/b"));
    }

    #[test]
    fn star_matches_one_segment_and_prefixes() {
        assert!(filter("root/*/w").matches("root/pool/w"));
        assert!(!filter("root/*/w").matches("root/w"));
        assert!(filter("root/w-*").matches("root/w-17"));
        assert!(!filter("root/w-*").matches("root/x-17"));
    }

    #[test]
    fn double_star_matches_any_depth() {
        let any = filter("root/**/w");
        assert!(any.matches("root/w"));
        assert!(any.matches("root/a/b/w"));
        assert!(!any.matches("root/a/b/x"));
        assert!(PathFilter::everything().matches("anything/at/all"));
    }

    #[test]
    fn bad_patterns_are_typed_errors() {
        assert!(PathFilter::new("").is_err());
        assert!(PathFilter::new("a//b").is_err());
        assert!(PathFilter::new("a/b*c").is_err());
    }
}
