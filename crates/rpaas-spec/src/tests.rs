use super::*;

const TOML: &str = r#"
[node]
admin = "127.0.0.1:9901"
drain_timeout = 5
[node.ips]
body_limit = 1024
[node.networks]
office = ["203.0.113.0/24"]

[[listener]]
address = "0.0.0.0:443"

[[instance]]
id = "a"
hostnames = ["a.example.net"]
cert = ["a-ecdsa.pem", "a-rsa.pem"]
key = ["a-ecdsa.key", "a-rsa.key"]
upstream = "https://10.0.0.5"
read_timeout = "10m"
trusted = ["office", { cidr = "198.51.100.7", note = "Jane's home" }]
[instance.class.api]
access = "trusted"
[instance.ips]
mode = "detect"
"#;

#[test]
fn toml_and_json_read_the_same_spec_and_write_it_back() {
    let spec: Spec = from_toml(TOML).expect("parses");
    assert_eq!(spec.instance[0].trusted[1].cidr(), "198.51.100.7");
    assert_eq!(
        spec.instance[0].cert,
        Some(Files::Many(vec!["a-ecdsa.pem".into(), "a-rsa.pem".into()]))
    );
    let json = serde_json::to_string(&spec).expect("json");
    let back: Spec = from_json(&json).expect("reads back");
    assert_eq!(back, spec);
    let toml_text = toml::to_string(&spec).expect("toml");
    let again: Spec = from_toml(&toml_text).expect("reads back");
    assert_eq!(again, spec);
    // Fields not written stay unwritten.
    assert!(!json.contains("write_timeout"));
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let e = from_toml::<Spec>("[[instance]]\nid = \"a\"\nupstraem = \"x\"\n").unwrap_err();
    assert_eq!(e.path, "instance[0].upstraem");
    assert!(e.reason.contains("upstraem"), "{e}");
    let e =
        from_json::<Spec>(r#"{"instance":[{"ips":{"mode":"block","treshold":5}}]}"#).unwrap_err();
    assert_eq!(e.path, "instance[0].ips.treshold");
    let e = from_value::<AclSpec>(serde_json::json!({"trusted": [5]})).unwrap_err();
    assert_eq!(e.path, "trusted[0]");
    let e = from_value::<AclSpec>(serde_json::json!({"upstream": "http://x"})).unwrap_err();
    assert!(e.reason.contains("upstream"), "{e}");
}

/// toml leaves the message of some syntax errors empty (a key with no value at the end of
/// the text): the reason still says what is wrong, not only where.
#[test]
fn a_syntax_error_has_a_reason_and_a_line() {
    let e = from_toml::<Spec>("[node]\nadmin =").unwrap_err();
    assert_eq!(e.reason, "malformed TOML (line 2)");
    let e = from_toml::<Spec>("[node]\nadmin = 1 2\n").unwrap_err();
    assert!(e.reason.starts_with("expected newline"), "{e}");
    // An empty key leaves serde_path_to_error's path empty: it is the document's.
    let e = from_json::<Spec>(r#"{"": 1}"#).unwrap_err();
    assert_eq!(e.path, "-");
}

#[test]
fn the_acl_is_the_partner_part_of_an_instance() {
    let spec: Spec = from_toml(TOML).expect("parses");
    let mut inst = spec.instance[0].clone();
    let mut acl = inst.acl();
    assert_eq!(acl.ips.mode.as_deref(), Some("detect"));
    acl.deployment = Some("agent-only".into());
    acl.trusted.clear();
    inst.set_acl(acl.clone());
    assert_eq!(inst.acl(), acl);
    assert_eq!(inst.upstream.as_deref(), Some("https://10.0.0.5"));
    let json = serde_json::to_value(&acl).expect("json");
    for k in json.as_object().expect("object").keys() {
        assert!(ACL_FIELDS.contains(&k.as_str()), "{k}");
    }
}

#[test]
fn every_instance_field_is_either_acl_or_operator() {
    // A spec with every field written: each key it serialises must be in exactly one list.
    let text = r#"
id = "a"
hostnames = ["a.example.net"]
cert = "c"
key = "k"
upstream = "https://x"
upstream_host = "x"
upstream_ca = "ca"
dangerous_skip_upstream_verify = true
bind = "127.0.0.1"
connect_timeout = 1
read_timeout = 1
write_timeout = 1
idle_timeout = 1
strip_headers = ["x"]
hsts = "off"
deployment = "mixed"
trusted = ["1.2.3.4"]
deny = ["1.2.3.5"]
countries = ["US"]
connector_secret = "0123456789abcdef"
connector_secret_file = "f"
[class.api]
access = "trusted"
[[restrict]]
name = "r"
block = ["/x"]
[ips]
mode = "detect"
[[udp]]
listen = "127.0.0.1:0"
[[tcp]]
listen = "127.0.0.1:0"
"#;
    let spec: InstanceSpec = from_toml(text).expect("parses");
    let v = serde_json::to_value(&spec).expect("json");
    for k in v.as_object().expect("object").keys() {
        let acl = ACL_FIELDS.contains(&k.as_str());
        let op = OPERATOR_FIELDS.contains(&k.as_str());
        assert!(acl != op, "{k}: acl {acl}, operator {op}");
    }
    assert_eq!(
        v.as_object().map(|o| o.len()),
        Some(ACL_FIELDS.len() + OPERATOR_FIELDS.len())
    );
}
