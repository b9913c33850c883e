//! The Automate exclusion set: CRS rule exclusions, in SecLang, for what a ConnectWise
//! Automate server legitimately receives (opaque agent bodies, REST `condition=` filters,
//! Control Center SOAP, technician scripts). Load it after `REQUEST-901-INITIALIZATION.conf`
//! and before the detection rules; it keys on `TX:rpaas_class`, which the caller presets with
//! [`RequestInput::tx`](crate::RequestInput::tx).

/// The SecLang text of `rules/automate-exclusions.conf`.
pub const AUTOMATE_EXCLUSIONS: &str = include_str!("../rules/automate-exclusions.conf");
