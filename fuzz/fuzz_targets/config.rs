//! The config parsers: `rpaas_spec::from_toml`/`from_json` (the shape) and
//! `rpaas_config::compile` (the meaning), on arbitrary text read as both TOML and JSON.
//!
//! Beyond "never panics": every error names a field path (or `-`) and a reason; a spec that
//! parses is written back (TOML and JSON) and reads as the same spec; a refused config names
//! at least one problem; an accepted one exports to a spec
//! that compiles again and exports to itself (`rpaas config export` gives a file a node can
//! start from).
//!
//! `compile` reads the files a spec names (rule files, secrets) but writes none. Inputs that
//! could name a device or a kernel file (`/dev/zero` never ends) skip that step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpaas_config::{compile, export, Document};
use rpaas_spec::{from_json, from_toml, InstancesFile, ShapeError, Spec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = from_toml::<InstancesFile>(text) {
        said_why(&e);
    }
    let toml_spec = from_toml::<Spec>(text);
    if let Err(e) = &toml_spec {
        said_why(e);
    }
    if let Ok(spec) = toml_spec {
        let written = toml::to_string(&spec).expect("a parsed spec serialises as TOML");
        assert_eq!(
            from_toml::<Spec>(&written).as_ref(),
            Ok(&spec),
            "TOML written back:\n{written}"
        );
        check_compile(text, spec);
    }
    let json_spec = from_json::<Spec>(text);
    if let Err(e) = &json_spec {
        said_why(e);
    }
    if let Ok(spec) = json_spec {
        let written = serde_json::to_string(&spec).expect("a parsed spec serialises as JSON");
        assert_eq!(
            from_json::<Spec>(&written).as_ref(),
            Ok(&spec),
            "JSON written back: {written}"
        );
        check_compile(text, spec);
    }
});

/// A shape error names a path and a reason that is more than a line number.
fn said_why(e: &ShapeError) {
    assert!(!e.path.is_empty(), "{e:?}");
    assert!(
        !e.reason.is_empty() && !e.reason.starts_with(" (line"),
        "{e:?}"
    );
}

fn check_compile(text: &str, spec: Spec) {
    if ["dev", "proc", "sys", "fd"]
        .iter()
        .any(|s| text.contains(s))
    {
        return;
    }
    let config = match compile(&Document::from_spec("fuzz.toml", spec)) {
        Ok(c) => c,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused config names a problem");
            assert!(
                errors
                    .0
                    .iter()
                    .all(|e| !e.key.is_empty() && !e.reason.is_empty()),
                "{errors:?}"
            );
            return;
        }
    };
    let exported = export(&config);
    let again = compile(&Document::from_spec("fuzz.toml", exported.clone()))
        .unwrap_or_else(|e| panic!("the export of an accepted config is refused: {e}"));
    assert_eq!(export(&again), exported, "export is not a fixed point");
}
