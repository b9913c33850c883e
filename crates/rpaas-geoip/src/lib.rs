//! Country lookups in MaxMind-format `.mmdb` databases. Reads both MaxMind GeoLite2/GeoIP2
//! Country records (`country.iso_code`, falling back to `registered_country.iso_code`) and
//! ip-location-db records (`country_code`). The database is read into memory once; a lookup is
//! pure computation.
//!
//! `writer` (feature `writer`, for tests and benchmarks only) writes small databases of
//! either record shape, so tests never depend on real GeoIP data; production builds do not
//! carry it.
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "writer"))]
pub mod writer;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

/// An ISO 3166-1 alpha-2 code, uppercase.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses `"us"`, `"US"`; refuses anything but two ASCII letters.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Some(Self([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("--")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a MaxMind DB file: {reason}")]
    Format { path: String, reason: String },
}

/// An opened database.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    pub database_type: String,
    pub build_epoch: u64,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("database_type", &self.database_type)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Country<'a>>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl GeoDb {
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(bytes).map_err(|e| GeoError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, maxminddb::MaxMindDbError> {
        let reader = maxminddb::Reader::from_source(bytes)?;
        let database_type = reader.metadata().database_type.clone();
        let build_epoch = reader.metadata().build_epoch;
        Ok(Self {
            reader,
            database_type,
            build_epoch,
        })
    }

    /// The country of `ip`, or `None` when the database has none (private, unlisted).
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        let result = self.reader.lookup(ip).ok()?;
        let rec: Record<'_> = result.decode().ok()??;
        let code = rec
            .country
            .and_then(|c| c.iso_code)
            .or(rec.country_code)
            .or_else(|| rec.registered_country.and_then(|c| c.iso_code))?;
        CountryCode::parse(code)
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{RecordShape, Writer};
    use super::*;

    fn db(shape: RecordShape) -> GeoDb {
        let mut w = Writer::new(shape);
        w.insert("8.8.8.0/24".parse().unwrap(), "US");
        w.insert("81.2.69.0/24".parse().unwrap(), "GB");
        w.insert("81.2.69.128/25".parse().unwrap(), "FR");
        w.insert("2001:db8::/32".parse().unwrap(), "de");
        w.insert("1.0.0.0/8".parse().unwrap(), "AU");
        w.insert("1.1.1.0/24".parse().unwrap(), "CN");
        GeoDb::from_bytes(w.build()).expect("valid db")
    }

    #[test]
    fn both_record_shapes_are_read() {
        for shape in [RecordShape::MaxMind, RecordShape::IpLocationDb] {
            let db = db(shape);
            let cc = |s: &str| db.country(s.parse().unwrap()).map(|c| c.to_string());
            assert_eq!(cc("8.8.8.8").as_deref(), Some("US"));
            assert_eq!(cc("81.2.69.1").as_deref(), Some("GB"));
            assert_eq!(cc("81.2.69.200").as_deref(), Some("FR"));
            assert_eq!(cc("2001:db8::1").as_deref(), Some("DE"));
            assert_eq!(cc("1.2.3.4").as_deref(), Some("AU"));
            assert_eq!(cc("1.1.1.1").as_deref(), Some("CN"));
            assert_eq!(cc("10.0.0.1"), None);
            assert_eq!(cc("::1"), None);
            assert_eq!(cc("9.9.9.9"), None);
        }
    }

    #[test]
    fn garbage_is_not_a_database() {
        assert!(GeoDb::from_bytes(b"not a database".to_vec()).is_err());
    }

    #[test]
    fn country_codes() {
        assert_eq!(
            CountryCode::parse("us").map(|c| c.to_string()).as_deref(),
            Some("US")
        );
        assert!(CountryCode::parse("USA").is_none());
        assert!(CountryCode::parse("1A").is_none());
    }
}
