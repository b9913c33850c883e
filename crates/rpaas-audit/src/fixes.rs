//! The remedy for each check: first what the vendor's guide (or Microsoft) says to change on
//! the server, then the rpaas setting that does it in front of the server.

use crate::check::ids;

/// The fix for a check id; empty for an unknown id.
pub fn fix(id: &str) -> &'static str {
    match id {
        ids::TLS_LEGACY => {
            "Windows: SCHANNEL\\Protocols\\TLS 1.0\\Server and TLS 1.1\\Server: Enabled=0, \
             DisabledByDefault=1, then reboot. rpaas: listeners default to tls = \"intermediate\" \
             (TLS 1.2+); serve old agents on a separate tls = \"legacy\" listener only if you must"
        }
        ids::TLS_WEAK => {
            "Windows: disable RC4, 3DES, NULL and export suites (SCHANNEL\\Ciphers, or the SSL \
             Cipher Suite Order policy) and put ECDHE+AES-GCM first. rpaas: the intermediate and \
             modern profiles offer forward-secret AEAD suites only"
        }
        ids::SERVER_HEADER => {
            "IIS 10: <requestFiltering removeServerHeader=\"true\"> in applicationHost.config. \
             rpaas: Server is stripped by default ([node] strip_headers)"
        }
        ids::X_POWERED_BY => {
            "IIS: HTTP Response Headers, remove X-Powered-By (<customHeaders><remove \
             name=\"X-Powered-By\"/>). rpaas: stripped by default ([node] strip_headers)"
        }
        ids::ASPNET_HEADERS => {
            "web.config: <httpRuntime enableVersionHeader=\"false\"/>; MVC: \
             MvcHandler.DisableMvcResponseHeader = true. rpaas: X-AspNet-Version and \
             X-AspNetMvc-Version are stripped by default ([node] strip_headers)"
        }
        ids::OPTIONS => {
            "IIS: Request Filtering, HTTP Verbs, Deny Verb OPTIONS (<verbs><add verb=\"OPTIONS\" \
             allowed=\"false\"/>). rpaas: OPTIONS is answered 405 by default ([node] deny_methods)"
        }
        ids::TRACE => {
            "IIS: Request Filtering, HTTP Verbs, Deny Verb TRACE and TRACK. rpaas: answered 405 \
             by default ([node] deny_methods)"
        }
        ids::LOCATION => {
            "IIS: give the server its public name (appcmd set config \
             -section:system.webServer/serverRuntime /alternateHostName:\"automate.example.com\" \
             /commit:apphost). rpaas: a request without Host gets 400, and Location/Refresh \
             naming the origin or an IP are rewritten to the public name"
        }
        ids::ADMIN => {
            "IIS: IP Address and Domain Restrictions on cwa, LegacyCCASMX and automate: allow your \
             addresses, Access for unspecified clients: Deny (<ipSecurity allowUnlisted=\"false\">); \
             leave LabTech and WCC2 open. rpaas: deployment = \"agent-only\" or \"mixed\" with \
             trusted = [your networks]"
        }
        ids::WCC2 => {
            "Keep Automate patched; if contacts do not use WCC2, deny it in IIS. rpaas: \
             deployment = \"agent-only\"/\"mixed\" keeps the portal trusted-only, or \
             [[instance.restrict]] block = [\"/WCC2/\"] refuses it outright"
        }
        ids::AGENT => {
            "Agents read the version here, so it cannot be hidden from them: keep Automate \
             patched so the version tells an attacker nothing. rpaas logs GET probes of it from \
             non-agent clients (IPS rule 100012)"
        }
        ids::SCREENCONNECT => {
            "Upgrade ScreenConnect (CVE-2024-1708/1709) and keep its web server out of reach. \
             rpaas: Server is stripped from everything it proxies ([node] strip_headers)"
        }
        ids::PORTS_CLOSED => {
            "Windows Firewall and the perimeter: no inbound 3306 (MySQL), 12413 (file service), \
             3389 (RDP), 135/139/445, 70, 8002, 40000-40050. rpaas: publish only the node; the \
             heartbeat and other services reach the server through rpaas-connector, which dials out"
        }
        ids::PORTS_EXPECTED => {
            "Agents need 443/TCP and 75/UDP (8484/TCP only for the Solution Center, from trusted \
             addresses). rpaas: a [[listener]] on 443, [[instance.udp]] for 75/UDP through \
             rpaas-connector"
        }
        ids::IIS_SERVER_HEADER => {
            "appcmd set config -section:system.webServer/security/requestFiltering \
             /removeServerHeader:\"True\" /commit:apphost (IIS 10 / Windows Server 2016 and later)"
        }
        ids::IIS_OPTIONS => {
            "appcmd set config -section:system.webServer/security/requestFiltering \
             /+\"verbs.[verb='OPTIONS',allowed='False']\" /commit:apphost (and TRACE, TRACK)"
        }
        ids::IIS_IP => {
            "For each of cwa, LegacyCCASMX and automate: appcmd set config \"Default Web Site/cwa\" \
             -section:system.webServer/security/ipSecurity /allowUnlisted:\"False\" /commit:apphost, \
             then /+\"[ipAddress='203.0.113.0',subnetMask='255.255.255.0',allowed='True']\" for \
             your networks; LabTech and WCC2 keep allowUnlisted=\"True\""
        }
        ids::SCHANNEL_TLS10 => {
            "reg add \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\\
             Protocols\\TLS 1.0\\Server\" /v Enabled /t REG_DWORD /d 0 /f, and /v \
             DisabledByDefault /t REG_DWORD /d 1 /f; reboot"
        }
        ids::SCHANNEL_TLS11 => {
            "reg add \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\\
             Protocols\\TLS 1.1\\Server\" /v Enabled /t REG_DWORD /d 0 /f, and /v \
             DisabledByDefault /t REG_DWORD /d 1 /f; reboot"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_fix() {
        for id in ids::NETWORK.iter().chain(ids::IIS).chain(ids::SCHANNEL) {
            assert!(!fix(id).is_empty(), "{id} has no fix");
        }
    }
}
