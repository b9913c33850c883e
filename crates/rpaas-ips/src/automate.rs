//! The shipped exclusions for what an Automate server legitimately receives, the counterpart
//! of rpaas-crs's `automate-exclusions.conf` for this engine's own rules. Every instance gets
//! them (after its own `[instance.ips] exclude`); each is scoped by traffic class, path and
//! argument or target, and says why.
//!
//! - **Technician commands (REST).** `POST /cwa/api/v1/Computers/{id}/CommandExecute` sends a
//!   command line or script for the agent to run, in the JSON `Parameters`: commands
//!   (`cat /etc/os-release; uname -a`, `Get-ChildItem C:\Windows\Temp`, a download with
//!   `Invoke-WebRequest`) are what the command-injection (`rce`) and OS-file (`lfi`) rules
//!   look for. Those two families are lifted for the `Parameters` member of that endpoint's
//!   body in the `api` class only; the other members, the query, the headers and the other
//!   families (SQLi, XSS, XXE, ...) stay inspected. The endpoint runs whatever an
//!   authenticated technician sends by design: its protection is the access policy (trusted
//!   networks), the login rate limits and authentication, not signatures.
//! - **Control Center SOAP.** The thick client's command and script operations to
//!   `/LabTech/ControlCenter.asmx` carry the command text in an XML element: the `rce` and
//!   `lfi` rules are lifted for the request body of that endpoint in the `control_center`
//!   class only (the query, headers and cookies stay inspected, and so do the XXE and SQLi
//!   rules on the body).

use crate::{Exclusion, PathPattern, Scope, Target, TrafficClass};

/// The rule families a command or script legitimately trips.
const COMMAND_FAMILIES: [&str; 2] = ["rce", "lfi"];

fn pattern(p: &str) -> Vec<PathPattern> {
    // The patterns are constants of this file; a test parses each.
    PathPattern::parse(p).map(|p| vec![p]).unwrap_or_default()
}

/// The exclusions, in the order above.
pub fn exclusions() -> Vec<Exclusion> {
    let families: Vec<String> = COMMAND_FAMILIES.iter().map(|s| s.to_string()).collect();
    vec![
        Exclusion {
            tags: families.clone(),
            classes: Some(vec![TrafficClass::Api]),
            paths: Some(pattern("/cwa/api/v1/computers/*/commandexecute")),
            args: Some(vec!["Parameters".to_string()]),
            // The JSON body's member, not a query argument of the same name.
            scope: Some(Scope::Body),
            ..Default::default()
        },
        Exclusion {
            tags: families,
            classes: Some(vec![TrafficClass::ControlCenter]),
            paths: Some(pattern("/labtech/controlcenter.asmx")),
            targets: Some(vec![Target::Body]),
            ..Default::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_exclusion_has_its_path() {
        for e in super::exclusions() {
            assert_eq!(e.paths.map(|p| p.len()), Some(1));
        }
    }
}
