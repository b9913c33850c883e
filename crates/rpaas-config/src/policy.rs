//! Validation of the access-policy keys: `[node]` GeoIP, countries, deny lists and named
//! networks; per instance the deployment model, trusted/deny lists, countries, class overrides
//! and restrictions. Produces the compiled `rpaas_policy::InstancePolicy`.

use std::path::Path;

use rpaas_geoip::CountryCode;
use rpaas_policy::{
    Access, ClassOverride, Deployment, InstancePolicy, IpNet, PathPattern, PolicySpec, Restriction,
    RestrictionKind, TrafficClass, UnknownCountry,
};

use crate::validate::{parse_cidr, Validator};
use crate::Node;
use rpaas_spec::{ClassSpec, InstanceSpec, NetEntry, NodeSpec, RestrictSpec};

const CLASS_NAMES: &str =
    "agent, deployment, control_center, web_control_center, api, portal, other";

impl Validator {
    pub(crate) fn countries(
        &mut self,
        file: &Path,
        key: &str,
        list: &[String],
    ) -> Vec<CountryCode> {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            match CountryCode::parse(c) {
                Some(cc) => out.push(cc),
                None => self.err(
                    file,
                    format!("{key}[{i}]"),
                    format!("{c:?} is not a two-letter ISO 3166 country code"),
                ),
            }
        }
        out
    }

    /// Parses the policy keys of `[node]` into `node`.
    pub(crate) fn node_policy(&mut self, file: &Path, n: &NodeSpec, node: &mut Node) {
        node.geoip_db = n.geoip_db.as_deref().map(|p| self.resolve(p));
        if let Some(p) = &node.geoip_db {
            if !p.is_file() {
                self.err(
                    file,
                    "node.geoip_db",
                    format!(
                        "file {} does not exist (scripts/fetch-geoip.sh downloads the default database)",
                        p.display()
                    ),
                );
            }
        }
        node.default_countries = match &n.default_countries {
            Some(list) => self.countries(file, "node.default_countries", list),
            None => Vec::new(),
        };
        if !node.default_countries.is_empty() && node.geoip_db.is_none() {
            self.err(
                file,
                "node.default_countries",
                "countries are configured but [node] geoip_db is not set",
            );
        }
        node.unknown_country = match n.unknown_country.as_deref() {
            None | Some("deny") => UnknownCountry::Deny,
            Some("allow") => UnknownCountry::Allow,
            Some(other) => {
                self.err(
                    file,
                    "node.unknown_country",
                    format!("{other:?} must be \"deny\" or \"allow\""),
                );
                UnknownCountry::Deny
            }
        };
        node.deny = self.cidrs(file, "node.deny", &n.deny);
        for (name, list) in &n.networks {
            if !is_name(name) {
                self.err(
                    file,
                    format!("node.networks.{name}"),
                    "network names are letters, digits, '-' and '_'",
                );
            }
            let nets = self.cidrs(file, &format!("node.networks.{name}"), list);
            node.networks.insert(name.clone(), nets);
        }
    }

    /// Trusted/deny entries: CIDRs or names of `[node.networks]` lists (with optional notes).
    fn nets_or_names(
        &mut self,
        file: &Path,
        key: &str,
        list: &[NetEntry],
        node: &Node,
    ) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let s = e.cidr();
            if let Some(named) = node.networks.get(s) {
                out.extend(named.iter().copied());
                continue;
            }
            let ekey = match e {
                NetEntry::Cidr(_) => format!("{key}[{i}]"),
                NetEntry::Noted { .. } => format!("{key}[{i}].cidr"),
            };
            match parse_cidr(s) {
                Ok(n) => out.push(n),
                Err(reason) => {
                    let reason = if is_name(s) {
                        format!("{s:?} is neither a CIDR nor a network in [node.networks]")
                    } else {
                        reason
                    };
                    self.err(file, ekey, reason);
                }
            }
            if let NetEntry::Noted { note: Some(n), .. } = e {
                if n.len() > 200 || n.chars().any(char::is_control) {
                    self.err(
                        file,
                        format!("{key}[{i}].note"),
                        "a note is at most 200 characters, without control characters",
                    );
                }
            }
        }
        out
    }

    fn patterns(&mut self, file: &Path, key: &str, list: &[String]) -> Vec<PathPattern> {
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            match PathPattern::parse(s) {
                Ok(p) => out.push(p),
                Err(reason) => self.err(file, format!("{key}[{i}]"), reason.to_string()),
            }
        }
        out
    }

    fn methods(&mut self, file: &Path, key: &str, list: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, m) in list.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
                self.err(
                    file,
                    format!("{key}[{i}]"),
                    format!("{m:?} is not an HTTP method"),
                );
            } else {
                out.push(m.to_ascii_uppercase());
            }
        }
        out
    }

    fn class_override(
        &mut self,
        file: &Path,
        key: &str,
        c: &ClassSpec,
        node: &Node,
    ) -> ClassOverride {
        let access = c.access.as_deref().and_then(|a| {
            let parsed = Access::parse(a);
            if parsed.is_none() {
                self.err(
                    file,
                    format!("{key}.access"),
                    format!("{a:?} must be \"open\", \"trusted\" or \"deny\""),
                );
            }
            parsed
        });
        let countries = c.countries.as_ref().map(|l| {
            let v = self.countries(file, &format!("{key}.countries"), l);
            if !v.is_empty() && node.geoip_db.is_none() {
                self.err(
                    file,
                    format!("{key}.countries"),
                    "countries are configured but [node] geoip_db is not set",
                );
            }
            v
        });
        let methods = c
            .methods
            .as_ref()
            .map(|l| self.methods(file, &format!("{key}.methods"), l));
        let paths = self.patterns(file, &format!("{key}.paths"), &c.paths);
        ClassOverride {
            access,
            countries,
            methods,
            paths,
        }
    }

    fn secret(&mut self, file: &Path, key: &str, r: &RestrictSpec) -> Option<String> {
        match (&r.secret, &r.secret_file) {
            (Some(s), None) if !s.is_empty() => Some(s.clone()),
            (None, Some(f)) => {
                let p = self.resolve(f);
                match std::fs::read_to_string(&p) {
                    Ok(s) if !s.trim().is_empty() => {
                        Some(s.trim_end_matches(['\r', '\n']).to_string())
                    }
                    Ok(_) => {
                        self.err(
                            file,
                            format!("{key}.secret_file"),
                            format!("{} is empty", p.display()),
                        );
                        None
                    }
                    Err(e) => {
                        self.err(
                            file,
                            format!("{key}.secret_file"),
                            format!("cannot read {}: {e}", p.display()),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.err(
                    file,
                    format!("{key}.secret"),
                    "set secret or secret_file, not both",
                );
                None
            }
            _ => {
                self.err(
                    file,
                    format!("{key}.secret"),
                    "a non-empty secret (or secret_file) is required",
                );
                None
            }
        }
    }

    fn restriction(&mut self, file: &Path, key: &str, r: &RestrictSpec) -> Option<Restriction> {
        let name = match r.name.as_deref() {
            Some(n) if is_name(n) => n.to_string(),
            Some(n) => {
                self.err(
                    file,
                    format!("{key}.name"),
                    format!("{n:?}: use letters, digits, '-' and '_'"),
                );
                return None;
            }
            None => {
                self.err(file, format!("{key}.name"), "is required");
                return None;
            }
        };
        let kinds = [r.block.is_some(), r.param.is_some(), r.header.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.err(
                file,
                key,
                "a restriction has exactly one of: block = [paths], param = \"...\" (with paths and secret), header = \"...\" (with admit and secret)",
            );
            return None;
        }
        let kind = if let Some(block) = &r.block {
            RestrictionKind::Block {
                paths: self.patterns(file, &format!("{key}.block"), block),
            }
        } else if let Some(param) = &r.param {
            let paths = match &r.paths {
                Some(p) if !p.is_empty() => self.patterns(file, &format!("{key}.paths"), p),
                _ => {
                    self.err(
                        file,
                        format!("{key}.paths"),
                        "the paths that need the secret are required",
                    );
                    Vec::new()
                }
            };
            let secret = self.secret(file, key, r)?;
            // The secret travels in a query string and a cookie: keep it to characters both
            // carry without escaping.
            if !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                self.err(
                    file,
                    format!("{key}.secret"),
                    "use only letters, digits and - . _ ~ (it travels in a URL and a cookie)",
                );
            }
            let cookie = r.cookie.clone().unwrap_or_else(|| format!("rpaas_{name}"));
            if !is_name(&cookie) {
                self.err(
                    file,
                    format!("{key}.cookie"),
                    format!("{cookie:?} is not a valid cookie name"),
                );
            }
            RestrictionKind::RequireSecret {
                paths,
                param: param.clone(),
                cookie,
                secret,
            }
        } else {
            let header = r.header.clone().unwrap_or_default().to_ascii_lowercase();
            if header.is_empty()
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                self.err(
                    file,
                    format!("{key}.header"),
                    format!("{header:?} is not a header name"),
                );
            }
            let mut classes = Vec::new();
            for (i, c) in r.admit.iter().flatten().enumerate() {
                match TrafficClass::parse(c) {
                    Some(tc) => classes.push(tc),
                    None => self.err(
                        file,
                        format!("{key}.admit[{i}]"),
                        format!("unknown class {c:?} (expected one of {CLASS_NAMES})"),
                    ),
                }
            }
            if r.admit.as_ref().is_none_or(|a| a.is_empty()) {
                self.err(
                    file,
                    format!("{key}.admit"),
                    "list the classes this header admits into",
                );
            }
            let secret = self.secret(file, key, r)?;
            RestrictionKind::AdmitHeader {
                header,
                secret,
                classes,
            }
        };
        Some(Restriction { name, kind })
    }

    /// Builds the instance's compiled policy.
    pub(crate) fn instance_policy(
        &mut self,
        file: &Path,
        key: &str,
        f: &InstanceSpec,
        node: &Node,
    ) -> InstancePolicy {
        let deployment = match f.deployment.as_deref() {
            None => Deployment::AllTraffic,
            Some(d) => Deployment::parse(d).unwrap_or_else(|| {
                self.err(
                    file,
                    format!("{key}.deployment"),
                    format!("{d:?} must be \"all-traffic\", \"agent-only\" or \"mixed\""),
                );
                Deployment::AllTraffic
            }),
        };
        let trusted = self.nets_or_names(file, &format!("{key}.trusted"), &f.trusted, node);
        let mut deny = node.deny.clone();
        deny.extend(self.nets_or_names(file, &format!("{key}.deny"), &f.deny, node));
        let mut countries = node.default_countries.clone();
        if let Some(list) = &f.countries {
            let own = self.countries(file, &format!("{key}.countries"), list);
            if !own.is_empty() && node.geoip_db.is_none() {
                self.err(
                    file,
                    format!("{key}.countries"),
                    "countries are configured but [node] geoip_db is not set",
                );
            }
            for c in own {
                if !countries.contains(&c) {
                    countries.push(c);
                }
            }
        }
        let mut overrides = Vec::new();
        for (name, c) in &f.class {
            let ckey = format!("{key}.class.{name}");
            match TrafficClass::parse(name) {
                Some(tc) => overrides.push((tc, self.class_override(file, &ckey, c, node))),
                None => self.err(
                    file,
                    ckey,
                    format!("unknown traffic class {name:?} (expected one of {CLASS_NAMES})"),
                ),
            }
        }
        let mut restrictions = Vec::new();
        let mut names = Vec::new();
        for (i, r) in f.restrict.iter().enumerate() {
            let rkey = format!("{key}.restrict[{i}]");
            if let Some(r) = self.restriction(file, &rkey, r) {
                if names.contains(&r.name) {
                    self.err(
                        file,
                        format!("{rkey}.name"),
                        format!("{:?} is used twice", r.name),
                    );
                }
                names.push(r.name.clone());
                restrictions.push(r);
            }
        }
        InstancePolicy::new(PolicySpec {
            deployment,
            overrides,
            trusted,
            deny,
            countries,
            unknown_country: node.unknown_country,
            restrictions,
        })
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
