//! A set of IP networks answering "is this address in any of them?" by walking a binary trie:
//! at most 32 (IPv4) or 128 (IPv6) steps, whatever the number of networks.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
struct Trie {
    /// Children per node; index 0 is the root. `u32::MAX` means none.
    nodes: Vec<[u32; 2]>,
    /// The node ends a stored prefix.
    terminal: Vec<bool>,
}

impl Trie {
    fn insert(&mut self, bits: u128, len: u8, width: u8) {
        if self.nodes.is_empty() {
            self.nodes.push([u32::MAX; 2]);
            self.terminal.push(false);
        }
        let mut node = 0usize;
        for depth in 0..len {
            if self.terminal[node] {
                return; // a shorter prefix already covers this one
            }
            let bit = ((bits >> (width - 1 - depth)) & 1) as usize;
            let next = self.nodes[node][bit];
            node = if next == u32::MAX {
                let n = self.nodes.len();
                self.nodes.push([u32::MAX; 2]);
                self.terminal.push(false);
                self.nodes[node][bit] = n as u32;
                n
            } else {
                next as usize
            };
        }
        self.terminal[node] = true;
    }

    fn contains(&self, bits: u128, width: u8) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        let mut node = 0usize;
        for depth in 0..width {
            if self.terminal[node] {
                return true;
            }
            let bit = ((bits >> (width - 1 - depth)) & 1) as usize;
            let next = self.nodes[node][bit];
            if next == u32::MAX {
                return false;
            }
            node = next as usize;
        }
        self.terminal[node]
    }
}

/// A set of IPv4 and IPv6 networks.
#[derive(Debug, Clone, Default)]
pub struct NetSet {
    v4: Trie,
    v6: Trie,
    len: usize,
}

impl NetSet {
    pub fn new<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> Self {
        let mut s = Self::default();
        for n in nets {
            s.insert(*n);
        }
        s
    }

    pub fn insert(&mut self, net: IpNet) {
        match net {
            IpNet::V4(n) => self
                .v4
                .insert(u32::from(n.network()) as u128, n.prefix_len(), 32),
            IpNet::V6(n) => self.v6.insert(u128::from(n.network()), n.prefix_len(), 128),
        }
        self.len += 1;
    }

    /// IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4) as u128, 32),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.contains(u32::from(v4) as u128, 32),
                None => self.v6.contains(u128::from(v6), 128),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nets: &[&str]) -> NetSet {
        let v: Vec<IpNet> = nets.iter().map(|n| n.parse().unwrap()).collect();
        NetSet::new(&v)
    }

    #[test]
    fn membership() {
        let s = set(&[
            "203.0.113.0/24",
            "10.0.0.0/8",
            "192.0.2.7/32",
            "2001:db8::/32",
            "0.0.0.0/32",
        ]);
        for ip in [
            "203.0.113.0",
            "203.0.113.255",
            "10.255.1.1",
            "192.0.2.7",
            "2001:db8:ffff::1",
            "::ffff:10.1.1.1",
            "0.0.0.0",
        ] {
            assert!(s.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "203.0.114.0",
            "11.0.0.0",
            "192.0.2.8",
            "2001:db9::1",
            "::1",
            "1.1.1.1",
        ] {
            assert!(!s.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!NetSet::default().contains("1.1.1.1".parse().unwrap()));
        let all = set(&["0.0.0.0/0", "::/0"]);
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(all.contains("2001::1".parse().unwrap()));
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        let mut seed: u64 = 42;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let nets: Vec<IpNet> = (0..300)
            .map(|_| {
                let ip = std::net::Ipv4Addr::from(next() as u32);
                let len = (next() % 25 + 8) as u8;
                IpNet::V4(ipnet::Ipv4Net::new(ip, len).unwrap().trunc())
            })
            .collect();
        let s = NetSet::new(&nets);
        for _ in 0..20_000 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(next() as u32));
            let linear = nets.iter().any(|n| n.contains(&ip));
            assert_eq!(s.contains(ip), linear, "{ip}");
        }
        // Addresses inside known networks too (random ones rarely hit).
        for n in &nets {
            assert!(s.contains(n.network()));
            assert!(s.contains(n.broadcast()));
        }
    }
}
