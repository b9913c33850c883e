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
