//! What the engine looks at, extracted once per request: arguments from the query and from
//! form, JSON and multipart bodies, cookies, headers.

use rpaas_policy::TrafficClass;

/// A request as the IPS sees it.
#[derive(Debug, Clone)]
pub struct RequestData {
    pub method: String,
    /// Canonical path (see `rpaas-path`).
    pub path: String,
    /// Path as received, before decoding.
    pub raw_path: String,
    pub query: String,
    /// Query arguments, as received (still percent-encoded).
    pub query_args: Vec<(String, String)>,
    /// Query arguments whose name comes more than once, as ASP.NET reads them: one value, the
    /// values (as received) joined by `,`, under the first spelling of the name. A payload
    /// split across duplicates (`id=1 union /*&id=*/ select 1`) is whole again here; these
    /// are inspected as arguments too (not counted as more of them).
    pub query_joined: Vec<(String, String)>,
    /// Body arguments (form: as received; JSON: decoded strings with dotted key paths, and
    /// each key as the value of `<path>#name`, so keys are inspected like values).
    pub body_args: Vec<(String, String)>,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    /// Arguments of the query strings of URL-valued request headers ([`URL_HEADERS`]), as
    /// received: a URL's query is arguments, not a shell line or one text.
    pub url_args: Vec<(String, String)>,
    /// The path (and fragment) of each URL-valued header, keyed by the header name; the whole
    /// value when it is not an absolute URL (`javascript:...`, `null`).
    pub url_paths: Vec<(String, String)>,
    pub body: Option<String>,
    pub class: TrafficClass,
}

/// Request headers whose values are URLs.
pub const URL_HEADERS: &[&str] = &["referer", "origin", "destination", "content-location"];

/// Splits an absolute URL (`scheme://authority/path?query#fragment`) into its path, query and
/// fragment; `None` for anything else.
fn split_url(v: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = v.split_once("://")?;
    let mut sc = scheme.bytes();
    if !sc.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sc.all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    {
        return None;
    }
    let start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = &rest[start..];
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    Some((path, query, fragment))
}

fn split_url_header(
    name: &str,
    v: &str,
    args: &mut Vec<(String, String)>,
    paths: &mut Vec<(String, String)>,
) {
    let v = v.trim();
    match split_url(v) {
        Some((path, query, fragment)) => {
            if !path.is_empty() {
                paths.push((name.to_string(), path.to_string()));
            }
            split_args(query, args);
            // A fragment (sent by some non-browser clients) is an SPA route: its own path
            // and query.
            if !fragment.is_empty() {
                let (fpath, fquery) = fragment.split_once('?').unwrap_or((fragment, ""));
                if !fpath.is_empty() {
                    paths.push((name.to_string(), fpath.to_string()));
                }
                split_args(fquery, args);
            }
        }
        None if !v.is_empty() => paths.push((name.to_string(), v.to_string())),
        None => {}
    }
}

fn split_args(s: &str, out: &mut Vec<(String, String)>) {
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((k.to_string(), v.to_string()));
    }
}

impl RequestData {
    /// `target` is the raw request target (`/path?query`); `path` its canonical path.
    pub fn new<'h>(
        method: &str,
        path: &str,
        target: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        class: TrafficClass,
    ) -> Self {
        let (raw_path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        let mut query_args = Vec::new();
        split_args(query, &mut query_args);
        let query_joined = join_duplicates(&query_args);
        let mut hs = Vec::new();
        let mut cookies = Vec::new();
        let mut url_args = Vec::new();
        let mut url_paths = Vec::new();
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            if URL_HEADERS.contains(&k.as_str()) {
                split_url_header(&k, v, &mut url_args, &mut url_paths);
            }
            if k == "cookie" {
                for c in v.split(';') {
                    let c = c.trim();
                    if c.is_empty() {
                        continue;
                    }
                    let (n, val) = c.split_once('=').unwrap_or((c, ""));
                    cookies.push((n.trim().to_string(), val.trim().to_string()));
                }
            }
            hs.push((k, v.to_string()));
        }
        Self {
            method: method.to_string(),
            path: path.to_string(),
            raw_path: raw_path.to_string(),
            query: query.to_string(),
            query_args,
            query_joined,
            body_args: Vec::new(),
            headers: hs,
            cookies,
            url_args,
            url_paths,
            body: None,
            class,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a (bounded) body: its text, and its arguments for form, JSON and multipart.
    pub fn set_body(&mut self, content_type: &str, body: &[u8]) {
        let text = String::from_utf8_lossy(body).into_owned();
        let ct = content_type.to_ascii_lowercase();
        if ct.starts_with("application/x-www-form-urlencoded") {
            split_args(&text, &mut self.body_args);
        } else if ct.contains("json") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                flatten_json("", &v, &mut self.body_args, 0);
            }
        } else if ct.starts_with("multipart/form-data") {
            if let Some(b) = ct
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("boundary="))
                .next()
            {
                // Use the boundary as sent (case matters), found again in the original header.
                let start = content_type.to_ascii_lowercase().find(b).unwrap_or(0);
                let boundary = content_type[start..start + b.len()]
                    .trim_matches('"')
                    .to_string();
                multipart(&text, &boundary, &mut self.body_args);
            }
        }
        self.body = Some(text);
    }
}

/// Arguments sharing a name, joined as ASP.NET's collections join them: names compared
/// decoded and without case, values joined by `,` in order.
fn join_duplicates(args: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if args.len() < 2 {
        return out;
    }
    // Most names need neither decoding nor case folding: those are borrowed.
    let keys: Vec<std::borrow::Cow<str>> = args
        .iter()
        .map(|(k, _)| {
            let k = if k.contains(['%', '+']) {
                std::borrow::Cow::Owned(crate::transform::url_decode(k))
            } else {
                std::borrow::Cow::Borrowed(k.as_str())
            };
            if k.chars().any(|c| c.is_uppercase()) {
                std::borrow::Cow::Owned(k.to_lowercase())
            } else {
                k
            }
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) || !keys[i + 1..].contains(k) {
            continue;
        }
        let same: Vec<&str> = keys
            .iter()
            .zip(args)
            .filter(|(x, _)| *x == k)
            .map(|(_, (_, v))| v.as_str())
            .collect();
        out.push((args[i].0.clone(), same.join(",")));
    }
    out
}

fn flatten_json(
    prefix: &str,
    v: &serde_json::Value,
    out: &mut Vec<(String, String)>,
    depth: usize,
) {
    if depth > 32 || out.len() > 1000 {
        return;
    }
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push((format!("{key}#name"), k.clone()));
                flatten_json(&key, v, out, depth + 1);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                flatten_json(prefix, v, out, depth + 1);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn multipart(text: &str, boundary: &str, out: &mut Vec<(String, String)>) {
    let delim = format!("--{boundary}");
    for part in text.split(delim.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let Some((head, body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let mut name = String::new();
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition") {
                for p in line.split(';').map(str::trim) {
                    if let Some(v) = p.strip_prefix("name=") {
                        name = v.trim_matches('"').to_string();
                    } else if let Some(v) = p.strip_prefix("filename=") {
                        out.push(("filename".into(), v.trim_matches('"').to_string()));
                    }
                }
            }
        }
        let body = body.strip_suffix("\r\n").unwrap_or(body);
        out.push((name, body.chars().take(8192).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction() {
        let mut r = RequestData::new(
            "POST",
            "/cwa/api/v1/computers",
            "/cwa/api/v1/computers?a=1&b=%27x&flag",
            [("Cookie", "s=1; t=two"), ("User-Agent", "x")],
            TrafficClass::Api,
        );
        assert_eq!(
            r.query_args,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "%27x".into()),
                ("flag".into(), "".into())
            ]
        );
        assert_eq!(
            r.cookies,
            vec![("s".into(), "1".into()), ("t".into(), "two".into())]
        );
        assert_eq!(r.header("user-agent"), Some("x"));
        assert!(r.query_joined.is_empty());
        let u = RequestData::new(
            "GET",
            "/x",
            "/x",
            [
                (
                    "Referer",
                    "https://h.example/automate/computers?page=2&id=123#/scripts?tab=1",
                ),
                ("Origin", "https://h.example"),
                ("Destination", "javascript:alert(1)"),
            ],
            TrafficClass::Other,
        );
        assert_eq!(
            u.url_args,
            vec![
                ("page".into(), "2".into()),
                ("id".into(), "123".into()),
                ("tab".into(), "1".into())
            ]
        );
        assert_eq!(
            u.url_paths,
            vec![
                ("referer".into(), "/automate/computers".into()),
                ("referer".into(), "/scripts".into()),
                ("destination".into(), "javascript:alert(1)".into())
            ]
        );
        let d = RequestData::new(
            "GET",
            "/x",
            "/x?id=1%20union%20/*&ID=*/%20select%201&other=2&i%64=3",
            [],
            TrafficClass::Other,
        );
        assert_eq!(
            d.query_joined,
            vec![("id".into(), "1%20union%20/*,*/%20select%201,3".into())]
        );
        r.set_body(
            "application/json",
            br#"{"condition":"name like 'x'","ids":[1,2],"n":{"k":"v"}}"#,
        );
        assert!(r
            .body_args
            .contains(&("condition".into(), "name like 'x'".into())));
        assert!(r.body_args.contains(&("n.k".into(), "v".into())));
        assert!(r.body_args.contains(&("ids".into(), "2".into())));
        let mut f = RequestData::new("POST", "/x", "/x", [], TrafficClass::Other);
        f.set_body(
            "application/x-www-form-urlencoded; charset=utf-8",
            b"user=a&pass=b%27",
        );
        assert_eq!(f.body_args[1], ("pass".into(), "b%27".into()));
        let mut m = RequestData::new("POST", "/x", "/x", [], TrafficClass::Other);
        m.set_body(
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../a.aspx\"\r\n\r\n<% x %>\r\n--XyZ--\r\n",
        );
        assert!(m
            .body_args
            .contains(&("filename".into(), "../../a.aspx".into())));
        assert!(m.body_args.contains(&("f".into(), "<% x %>".into())));
    }
}
