//! A small MaxMind DB (format 2.0) writer: an IPv6 search tree with 24-bit records (IPv4
//! networks live at `::a.b.c.d/96+n`), a data section of country records, and the metadata
//! map. Enough for tests and demos; not a general-purpose encoder.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Which record layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordShape {
    /// `{"country": {"iso_code": "US"}}` as in GeoLite2-Country.
    MaxMind,
    /// `{"country_code": "US"}` as in ip-location-db.
    IpLocationDb,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rec {
    Empty,
    Node(u32),
    Data(u32),
}

pub struct Writer {
    shape: RecordShape,
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Writer {
    pub fn new(shape: RecordShape) -> Self {
        Self {
            shape,
            nodes: vec![[Rec::Empty, Rec::Empty]],
            data: Vec::new(),
            offsets: HashMap::new(),
        }
    }

    /// Maps `net` to `country`. Insert less specific networks first.
    pub fn insert(&mut self, net: IpNet, country: &str) {
        let offset = self.record(country);
        let (bits, len) = match net {
            IpNet::V4(n) => ((u32::from(n.network()) as u128), 96 + n.prefix_len() as u32),
            IpNet::V6(n) => (u128::from(n.network()), n.prefix_len() as u32),
        };
        let mut node = 0usize;
        for depth in 0..len {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == len {
                self.nodes[node][bit] = Rec::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Rec::Node(n) => n as usize,
                other => {
                    // Split an existing leaf (or empty) so the more specific net can go below it.
                    let n = self.nodes.len();
                    self.nodes.push([other, other]);
                    self.nodes[node][bit] = Rec::Node(n as u32);
                    n
                }
            };
        }
    }

    fn record(&mut self, country: &str) -> u32 {
        if let Some(o) = self.offsets.get(country) {
            return *o;
        }
        let offset = self.data.len() as u32;
        let mut d = Vec::new();
        match self.shape {
            RecordShape::MaxMind => {
                map(&mut d, 1);
                string(&mut d, "country");
                map(&mut d, 1);
                string(&mut d, "iso_code");
                string(&mut d, country);
            }
            RecordShape::IpLocationDb => {
                map(&mut d, 1);
                string(&mut d, "country_code");
                string(&mut d, country);
            }
        }
        self.data.extend_from_slice(&d);
        self.offsets.insert(country.to_string(), offset);
        offset
    }

    /// The complete database file.
    pub fn build(&self) -> Vec<u8> {
        let n = self.nodes.len() as u32;
        let value = |r: Rec| -> u32 {
            match r {
                Rec::Empty => n,
                Rec::Node(i) => i,
                Rec::Data(off) => n + 16 + off,
            }
        };
        let mut out = Vec::with_capacity(self.nodes.len() * 6 + self.data.len() + 256);
        for [l, r] in &self.nodes {
            out.extend_from_slice(&value(*l).to_be_bytes()[1..]);
            out.extend_from_slice(&value(*r).to_be_bytes()[1..]);
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let mut m = Vec::new();
        map(&mut m, 9);
        string(&mut m, "binary_format_major_version");
        uint(&mut m, 5, 2);
        string(&mut m, "binary_format_minor_version");
        uint(&mut m, 5, 0);
        string(&mut m, "build_epoch");
        uint64(&mut m, 1_700_000_000);
        string(&mut m, "database_type");
        string(&mut m, "rpaas-test-country");
        string(&mut m, "description");
        map(&mut m, 1);
        string(&mut m, "en");
        string(&mut m, "rpaas test database");
        string(&mut m, "ip_version");
        uint(&mut m, 5, 6);
        string(&mut m, "languages");
        m.extend_from_slice(&[0x01, 0x04]); // array of 1 (extended type 11)
        string(&mut m, "en");
        string(&mut m, "node_count");
        uint(&mut m, 6, n as u64);
        string(&mut m, "record_size");
        uint(&mut m, 5, 24);
        out.extend_from_slice(&m);
        out
    }
}

/// Control byte(s) for a standard type with a small size.
fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
    if size < 29 {
        out.push((ty << 5) | size as u8);
    } else if size < 29 + 256 {
        out.push((ty << 5) | 29);
        out.push((size - 29) as u8);
    } else {
        out.push((ty << 5) | 30);
        out.extend_from_slice(&((size - 285) as u16).to_be_bytes());
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    control(out, 2, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn map(out: &mut Vec<u8>, entries: usize) {
    control(out, 7, entries);
}

/// uint16 (type 5) or uint32 (type 6), minimal big-endian bytes.
fn uint(out: &mut Vec<u8>, ty: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, ty, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn uint64(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push((8 - skip) as u8); // extended type: control with type 0
    out.push(9 - 7);
    out.extend_from_slice(&bytes[skip..]);
}

/// Convenience: a database mapping each `(network, country)`.
pub fn build(shape: RecordShape, entries: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let mut nets: Vec<(IpNet, &str)> = Vec::new();
    for (n, c) in entries {
        let net: IpNet = n
            .parse()
            .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{n:?} is not a network"))?;
        nets.push((net, c));
    }
    nets.sort_by_key(|(n, _)| n.prefix_len() + if n.addr().is_ipv4() { 96 } else { 0 });
    let mut w = Writer::new(shape);
    for (n, c) in nets {
        w.insert(n, c);
    }
    Ok(w.build())
}
