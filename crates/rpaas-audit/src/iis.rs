//! An exported IIS `applicationHost.config`, read into a small element tree (quick-xml; no DTD
//! or entity expansion), and the verdicts `iis-remove-server-header`, `iis-options-denied`
//! and `iis-ip-restrictions`.
//!
//! IIS merges configuration by location: an attribute set in `<location path="Site/app">`
//! overrides the one set for `Site`, which overrides the server-wide `<system.webServer>`
//! (unless that location says `inheritInChildApplications="false"`). Collections (`<verbs>`,
//! `<ipSecurity>` entries) merge `add`/`remove`/`clear` in the same order. Only this file is
//! read: an unlocked section set again in an application's own web.config is not seen.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use crate::check::{ids, Check, Status};
use crate::error::FileError;
use crate::judge::shown;

/// An element: name, attributes (in order, names as written), children. Text is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// Follows a path of child names (first match at each step).
    fn descend(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, n| e.child(n))
    }
}

const MAX_DEPTH: usize = 64;

/// Why a text is not an element tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub position: u64,
    pub reason: String,
}

fn element(e: &BytesStart<'_>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| err.to_string())?;
        let k = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        // An entity we do not know (there is no DTD processing) keeps its raw text.
        let v = match a.unescape_value() {
            Ok(v) => v.into_owned(),
            Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
        };
        attrs.push((k, v));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// Parses XML text into its root element.
pub fn parse_xml(text: &str) -> Result<Element, XmlError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let err = |reader: &quick_xml::Reader<&[u8]>, reason: String| XmlError {
        position: reader.buffer_position(),
        reason,
    };
    loop {
        let ev = reader.read_event().map_err(|e| XmlError {
            position: reader.error_position(),
            reason: e.to_string(),
        })?;
        match ev {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(&reader, format!("nested deeper than {MAX_DEPTH}")));
                }
                if root.is_some() {
                    return Err(err(&reader, "content after the root element".into()));
                }
                stack.push(element(&e).map_err(|r| err(&reader, r))?);
            }
            Event::Empty(e) => {
                let el = element(&e).map_err(|r| err(&reader, r))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(err(&reader, "content after the root element".into())),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(err(&reader, "end tag without a start".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError {
            position: reader.buffer_position(),
            reason: format!("<{}> is not closed", stack.last().map_or("", |e| &e.name)),
        });
    }
    root.ok_or(XmlError {
        position: 0,
        reason: "no element".into(),
    })
}

/// An applicationHost.config, parsed.
#[derive(Debug, Clone)]
pub struct IisConfig {
    root: Element,
}

/// The Automate applications and whether the guide restricts them.
pub const APPS: &[(&str, bool)] = &[
    ("cwa", true),
    ("LegacyCCASMX", true),
    ("automate", true),
    ("LabTech", false),
    ("WCC2", false),
];

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect()
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len()
        && prefix
            .iter()
            .zip(path)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

fn is_true(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// A place settings are written: the server-wide section or a `<location>`.
struct Scope<'a> {
    path: Vec<String>,
    web_server: &'a Element,
}

impl Scope<'_> {
    fn label(&self) -> String {
        if self.path.is_empty() {
            "server-wide".into()
        } else {
            format!("<location path=\"{}\">", shown(&self.path.join("/"), 80))
        }
    }
}

/// An effective attribute value and where it was set (`None`: the IIS default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub value: Option<String>,
    pub set_in: String,
}

impl IisConfig {
    pub fn parse(text: &str) -> Result<Self, XmlError> {
        let root = parse_xml(text)?;
        if !root.name.eq_ignore_ascii_case("configuration") {
            return Err(XmlError {
                position: 0,
                reason: format!(
                    "the root element is <{}>, not <configuration>: not an applicationHost.config",
                    shown(&root.name, 40)
                ),
            });
        }
        Ok(Self { root })
    }

    pub fn load(path: &Path) -> Result<Self, FileError> {
        let text = crate::files::read_text(path)?;
        Self::parse(&text).map_err(|e| FileError::Xml {
            path: path.to_path_buf(),
            position: e.position,
            reason: e.reason,
        })
    }

    /// Scopes that apply to `path`, least specific first.
    fn scopes_for(&self, path: &[String]) -> Vec<Scope<'_>> {
        let mut out = Vec::new();
        if let Some(ws) = self.root.child("system.webServer") {
            out.push(Scope {
                path: Vec::new(),
                web_server: ws,
            });
        }
        for loc in self.root.children_named("location") {
            let p = segments(loc.attr("path").unwrap_or(""));
            let Some(ws) = loc.child("system.webServer") else {
                continue;
            };
            if !is_prefix(&p, path) {
                continue;
            }
            let no_inherit = loc
                .attr("inheritInChildApplications")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
            if no_inherit && p.len() < path.len() {
                continue;
            }
            out.push(Scope {
                path: p,
                web_server: ws,
            });
        }
        out.sort_by_key(|s| s.path.len());
        out
    }

    /// The value of `attr` on the element at `section` (below system.webServer) for `path`.
    pub fn effective(&self, path: &[String], section: &[&str], attr: &str) -> Effective {
        let mut eff = Effective {
            value: None,
            set_in: "IIS default".into(),
        };
        for s in self.scopes_for(path) {
            if let Some(v) = s.web_server.descend(section).and_then(|e| e.attr(attr)) {
                eff = Effective {
                    value: Some(v.to_string()),
                    set_in: s.label(),
                };
            }
        }
        eff
    }

    /// A collection (`add`/`remove`/`clear` children keyed by `key`) merged for `path`:
    /// (key, element) in effect.
    fn collection(&self, path: &[String], section: &[&str], key: &str) -> Vec<(String, Element)> {
        let mut items: Vec<(String, Element)> = Vec::new();
        for s in self.scopes_for(path) {
            let Some(e) = s.web_server.descend(section) else {
                continue;
            };
            for c in &e.children {
                let k = c.attr(key).unwrap_or("").trim().to_ascii_lowercase();
                if c.name.eq_ignore_ascii_case("clear") {
                    items.clear();
                } else if c.name.eq_ignore_ascii_case("remove") {
                    items.retain(|(x, _)| *x != k);
                } else if c.name.eq_ignore_ascii_case("add") {
                    items.retain(|(x, _)| *x != k);
                    items.push((k, c.clone()));
                }
            }
        }
        items
    }

    /// Site names, and the full location path of every application (`Site/app/...`).
    fn applications(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut sites = Vec::new();
        let mut apps = Vec::new();
        let Some(list) = self.root.descend(&["system.applicationHost", "sites"]) else {
            return (sites, apps);
        };
        for site in list.children_named("site") {
            let Some(name) = site.attr("name") else {
                continue;
            };
            sites.push(name.to_string());
            for app in site.children_named("application") {
                let mut p = vec![name.to_string()];
                p.extend(segments(app.attr("path").unwrap_or("")));
                if p.len() > 1 {
                    apps.push(p);
                }
            }
        }
        (sites, apps)
    }

    /// Paths of the application named `app` (last segment), from `<sites>` and `<location>`s.
    fn app_paths(&self, app: &str) -> Vec<Vec<String>> {
        let (_, apps) = self.applications();
        let mut out: Vec<Vec<String>> = apps
            .into_iter()
            .filter(|p| p.last().is_some_and(|l| l.eq_ignore_ascii_case(app)))
            .collect();
        for loc in self.root.children_named("location") {
            let p = segments(loc.attr("path").unwrap_or(""));
            if p.len() > 1
                && p.last().is_some_and(|l| l.eq_ignore_ascii_case(app))
                && !out.iter().any(|o| is_prefix(o, &p) && o.len() == p.len())
            {
                out.push(p);
            }
        }
        out
    }

    /// Where server-wide settings are judged: every site (or the server when there is none)
    /// and every Automate application.
    fn judged_paths(&self) -> Vec<Vec<String>> {
        let (sites, _) = self.applications();
        let mut out: Vec<Vec<String>> = if sites.is_empty() {
            vec![Vec::new()]
        } else {
            sites.into_iter().map(|s| vec![s]).collect()
        };
        for (app, _) in APPS {
            out.extend(self.app_paths(app));
        }
        out
    }
}

fn where_(p: &[String]) -> String {
    if p.is_empty() {
        "the server".into()
    } else {
        shown(&p.join("/"), 80)
    }
}

/// The three IIS checks.
pub fn judge_iis(c: &IisConfig) -> Vec<Check> {
    vec![server_header(c), options_denied(c), ip_restrictions(c)]
}

const REQUEST_FILTERING: &[&str] = &["security", "requestFiltering"];
const VERBS: &[&str] = &["security", "requestFiltering", "verbs"];
const IP_SECURITY: &[&str] = &["security", "ipSecurity"];

fn server_header(c: &IisConfig) -> Check {
    let paths = c.judged_paths();
    let mut off = Vec::new();
    let mut set_in = Vec::new();
    for p in &paths {
        let e = c.effective(p, REQUEST_FILTERING, "removeServerHeader");
        if e.value.as_deref().is_some_and(is_true) {
            if !set_in.contains(&e.set_in) {
                set_in.push(e.set_in);
            }
        } else {
            off.push(format!("{} ({})", where_(p), e.set_in));
        }
    }
    if off.is_empty() {
        Check::new(
            ids::IIS_SERVER_HEADER,
            Status::Pass,
            format!("removeServerHeader=\"true\" ({})", set_in.join(", ")),
        )
    } else {
        Check::new(
            ids::IIS_SERVER_HEADER,
            Status::Fail,
            format!("the Server header is sent for {}", off.join(", ")),
        )
    }
}

/// Is `verb` refused at `path`? (denied, where it was decided)
fn verb_denied(c: &IisConfig, path: &[String], verb: &str) -> (bool, String) {
    let verb = verb.to_ascii_lowercase();
    if let Some((_, e)) = c
        .collection(path, VERBS, "verb")
        .into_iter()
        .find(|(k, _)| *k == verb)
    {
        let allowed = e.attr("allowed").is_none_or(is_true);
        return (!allowed, format!("allowed=\"{allowed}\""));
    }
    let unlisted = c.effective(path, VERBS, "allowUnlisted");
    let allowed = unlisted.value.as_deref().is_none_or(is_true);
    (
        !allowed,
        format!(
            "not listed, allowUnlisted=\"{allowed}\" ({})",
            unlisted.set_in
        ),
    )
}

fn options_denied(c: &IisConfig) -> Check {
    let paths = c.judged_paths();
    let mut open = Vec::new();
    for p in &paths {
        let (denied, why) = verb_denied(c, p, "OPTIONS");
        if !denied {
            open.push(format!("{}: {why}", where_(p)));
        }
    }
    let others: Vec<String> = ["TRACE", "TRACK"]
        .iter()
        .map(|v| {
            let all = paths.iter().all(|p| verb_denied(c, p, v).0);
            format!(
                "{v} {}",
                if all {
                    "denied"
                } else {
                    "not denied everywhere"
                }
            )
        })
        .collect();
    let info = format!("; info: {}", others.join(", "));
    if open.is_empty() {
        Check::new(
            ids::IIS_OPTIONS,
            Status::Pass,
            format!(
                "OPTIONS denied in request filtering for {} scope(s){info}",
                paths.len()
            ),
        )
    } else {
        Check::new(
            ids::IIS_OPTIONS,
            Status::Fail,
            format!("OPTIONS allowed for {}{info}", open.join("; ")),
        )
    }
}

fn ip_restrictions(c: &IisConfig) -> Check {
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    let mut found = 0;
    for (app, restricted) in APPS {
        let paths = c.app_paths(app);
        if paths.is_empty() {
            parts.push(format!("{app}: not in this config"));
            continue;
        }
        found += 1;
        for p in &paths {
            let e = c.effective(p, IP_SECURITY, "allowUnlisted");
            let unlisted = e.value.as_deref().is_none_or(is_true);
            let name = where_(p);
            match (restricted, unlisted) {
                (true, false) => {
                    let allowed = c
                        .collection(p, IP_SECURITY, "ipAddress")
                        .iter()
                        .filter(|(_, el)| el.attr("allowed").is_some_and(is_true))
                        .count();
                    if allowed == 0 {
                        if status == Status::Pass {
                            status = Status::Warn;
                        }
                        parts.push(format!(
                            "{name}: unspecified clients denied, but no address is allowed \
                             (technicians are locked out too)"
                        ));
                    } else {
                        parts.push(format!(
                            "{name}: restricted, {allowed} allowed address(es) ({})",
                            e.set_in
                        ));
                    }
                }
                (true, true) => {
                    status = Status::Fail;
                    parts.push(format!(
                        "{name}: OPEN to unspecified clients (allowUnlisted=\"true\", {})",
                        e.set_in
                    ));
                }
                (false, true) => parts.push(format!("{name}: open, as it must be")),
                (false, false) => {
                    status = Status::Fail;
                    let who = if app.eq_ignore_ascii_case("LabTech") {
                        "agents cannot check in"
                    } else {
                        "contacts cannot log in"
                    };
                    parts.push(format!(
                        "{name}: unspecified clients denied ({}): {who}",
                        e.set_in
                    ));
                }
            }
        }
    }
    if found == 0 {
        return Check::skip(
            ids::IIS_IP,
            "no Automate application (cwa, LegacyCCASMX, automate, LabTech, WCC2) in this config",
        );
    }
    Check::new(ids::IIS_IP, status, parts.join("; "))
}

#[cfg(test)]
mod tests;
