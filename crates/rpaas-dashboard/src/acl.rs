//! The ACL editor: the form over `GET|PUT /v1/instances/{id}/acl`, errors by field (the API's
//! field paths mapped to form keys), and the preview of a proposed ACL.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::pages::{csrf_field, field, select, Fields, CLASSES};
use crate::view::{page, respond};
use crate::{enc, Answer, Dash, User};

// ---- ACL ---------------------------------------------------------------------------------

/// `10.0.0.0/8 # office` per line → `{"cidr", "note"}` entries.
fn nets(text: &str) -> Value {
    Value::Array(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once('#') {
                Some((c, n)) if !n.trim().is_empty() => {
                    json!({"cidr": c.trim(), "note": n.trim()})
                }
                Some((c, _)) => json!(c.trim()),
                None => json!(l),
            })
            .collect(),
    )
}

fn nets_text(v: &Value) -> String {
    v.as_array()
        .map(|l| {
            l.iter()
                .map(
                    |e| match (e.as_str(), e["cidr"].as_str(), e["note"].as_str()) {
                        (Some(c), _, _) => c.to_string(),
                        (None, Some(c), Some(n)) => format!("{c} # {n}"),
                        (None, Some(c), None) => c.to_string(),
                        _ => String::new(),
                    },
                )
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn list_text(v: &Value) -> String {
    v.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .or_else(|| Some(x.to_string()))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The ACL the form describes; a field that is not even JSON is an error by form key.
fn acl_of(f: &Fields) -> Result<Value, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut acl = serde_json::Map::new();
    if !field(f, "deployment").is_empty() {
        acl.insert("deployment".into(), json!(field(f, "deployment")));
    }
    for k in ["trusted", "deny"] {
        let v = nets(field(f, k));
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            acl.insert(k.into(), v);
        }
    }
    if !field(f, "countries").trim().is_empty() {
        acl.insert("countries".into(), json!(list(field(f, "countries"))));
    }
    let mut classes = serde_json::Map::new();
    for c in CLASSES {
        let mut o = serde_json::Map::new();
        let access = field(f, &format!("class.{c}.access"));
        if !access.is_empty() {
            o.insert("access".into(), json!(access));
        }
        let countries = field(f, &format!("class.{c}.countries"));
        if !countries.trim().is_empty() {
            o.insert("countries".into(), json!(list(countries)));
        }
        for k in ["methods", "paths"] {
            let raw = field(f, &format!("class.{c}.{k}"));
            if !raw.trim().is_empty() {
                o.insert(k.into(), json!(list(raw)));
            }
        }
        if !o.is_empty() {
            classes.insert(c.into(), Value::Object(o));
        }
    }
    if !classes.is_empty() {
        acl.insert("class".into(), Value::Object(classes));
    }
    let restrict = field(f, "restrict").trim();
    if !restrict.is_empty() {
        match serde_json::from_str::<Value>(restrict) {
            Ok(v) => {
                acl.insert("restrict".into(), v);
            }
            Err(e) => errors.push(("restrict".into(), format!("not JSON: {e}"))),
        }
    }
    let mut ips = serde_json::Map::new();
    if !field(f, "ips.mode").is_empty() {
        ips.insert("mode".into(), json!(field(f, "ips.mode")));
    }
    let threshold = field(f, "ips.threshold").trim();
    if !threshold.is_empty() {
        match threshold.parse::<i64>() {
            Ok(n) => {
                ips.insert("threshold".into(), json!(n));
            }
            Err(_) => errors.push((
                "ips.threshold".into(),
                format!("{threshold:?} is not a number"),
            )),
        }
    }
    let disable = list(field(f, "ips.disable"));
    if !disable.is_empty() {
        let ids: Result<Vec<i64>, _> = disable.iter().map(|s| s.parse::<i64>()).collect();
        match ids {
            Ok(ids) => {
                ips.insert("disable".into(), json!(ids));
            }
            Err(_) => errors.push(("ips.disable".into(), "rule ids are numbers".into())),
        }
    }
    let exclude = field(f, "ips.exclude").trim();
    if !exclude.is_empty() {
        match serde_json::from_str::<Value>(exclude) {
            Ok(v) => {
                ips.insert("exclude".into(), v);
            }
            Err(e) => errors.push(("ips.exclude".into(), format!("not JSON: {e}"))),
        }
    }
    if !ips.is_empty() {
        acl.insert("ips".into(), Value::Object(ips));
    }
    if errors.is_empty() {
        Ok(Value::Object(acl))
    } else {
        Err(errors)
    }
}

/// The form values of an ACL as the API returns it.
fn fields_of(acl: &Value) -> Fields {
    let mut f = Fields::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    f.insert("deployment".into(), s(&acl["deployment"]));
    f.insert("trusted".into(), nets_text(&acl["trusted"]));
    f.insert("deny".into(), nets_text(&acl["deny"]));
    f.insert("countries".into(), list_text(&acl["countries"]));
    for c in CLASSES {
        let o = &acl["class"][c];
        f.insert(format!("class.{c}.access"), s(&o["access"]));
        for k in ["countries", "methods", "paths"] {
            f.insert(format!("class.{c}.{k}"), list_text(&o[k]));
        }
    }
    if acl["restrict"].as_array().is_some_and(|a| !a.is_empty()) {
        f.insert("restrict".into(), acl["restrict"].to_string());
    }
    f.insert("ips.mode".into(), s(&acl["ips"]["mode"]));
    f.insert(
        "ips.threshold".into(),
        acl["ips"]["threshold"]
            .as_i64()
            .map(|n| n.to_string())
            .unwrap_or_default(),
    );
    f.insert("ips.disable".into(), list_text(&acl["ips"]["disable"]));
    if acl["ips"]["exclude"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        f.insert("ips.exclude".into(), acl["ips"]["exclude"].to_string());
    }
    f
}

/// The form key an API error field belongs to (`acl.trusted[2]` → `trusted`).
fn form_key(api_field: &str) -> String {
    let k = api_field.strip_prefix("acl.").unwrap_or(api_field);
    let mut out = String::new();
    for part in k.split('.') {
        let name = part.split('[').next().unwrap_or(part);
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(name);
        let known = matches!(
            out.as_str(),
            "deployment" | "trusted" | "deny" | "countries" | "restrict"
        ) || out.starts_with("ips.")
            || out.matches('.').count() == 2;
        if known {
            break;
        }
    }
    out
}

fn errs_for(errors: &[(String, String)], key: &str) -> Markup {
    html! {
        @for (f, r) in errors.iter().filter(|(f, _)| form_key(f) == key) {
            span.err data-field=(f) { (f) ": " (r) }
        }
    }
}

fn acl_page(
    u: &User,
    id: &str,
    etag: &str,
    f: &Fields,
    errors: &[(String, String)],
    notice: Option<Markup>,
) -> Markup {
    let ro = !u.can_write();
    let other: Vec<&(String, String)> = errors
        .iter()
        .filter(|(k, _)| {
            let fk = form_key(k);
            !f.contains_key(&fk) && !fk.starts_with("class.")
        })
        .collect();
    page(
        "ACL",
        Some(u),
        html! {
            h1 { "ACL" }
            p { a href=(format!("/ui/instances/{}", enc(id))) { "Back to the instance" } }
            @if let Some(n) = notice { (n) }
            @if ro { p.warn { "You may read this ACL; changing it needs a partner admin." } }
            @for (k, r) in &other { p.err { (k) ": " (r) } }
            form id="acl" method="post" action=(format!("/ui/instances/{}/acl", enc(id))) {
                (csrf_field(u))
                input type="hidden" name="etag" value=(etag);
                label for="deployment" { "Deployment model" }
                (select("deployment", field(f, "deployment"), &[("", "default (all-traffic)"), ("all-traffic", "all-traffic"), ("agent-only", "agent-only"), ("mixed", "mixed")]))
                (errs_for(errors, "deployment"))
                label for="trusted" { "Trusted networks (one CIDR per line, # note)" }
                textarea name="trusted" id="trusted" { (field(f, "trusted")) }
                (errs_for(errors, "trusted"))
                label for="deny" { "Denied networks (one CIDR per line, # note)" }
                textarea name="deny" id="deny" { (field(f, "deny")) }
                (errs_for(errors, "deny"))
                label for="countries" { "Countries allowed (ISO codes; empty: any)" }
                input type="text" name="countries" id="countries" value=(field(f, "countries"));
                (errs_for(errors, "countries"))
                h2 { "Per traffic class" }
                table {
                    tr { th { "Class" } th { "Access" } th { "Countries" } th { "Methods" } th { "Extra paths" } }
                    @for c in CLASSES {
                        tr {
                            td { (c) }
                            td { (select(&format!("class.{c}.access"), field(f, &format!("class.{c}.access")), &[("", "default"), ("open", "open"), ("trusted", "trusted only"), ("deny", "deny")]))
                                 (errs_for(errors, &format!("class.{c}.access"))) (errs_for(errors, &format!("class.{c}"))) }
                            @for k in ["countries", "methods", "paths"] {
                                td { input type="text" name=(format!("class.{c}.{k}")) value=(field(f, &format!("class.{c}.{k}")));
                                     (errs_for(errors, &format!("class.{c}.{k}"))) }
                            }
                        }
                    }
                }
                label for="restrict" { "Restrictions (JSON list, docs/config.md)" }
                textarea name="restrict" id="restrict" { (field(f, "restrict")) }
                (errs_for(errors, "restrict"))
                h2 { "IPS" }
                label for="ips.mode" { "Mode" }
                (select("ips.mode", field(f, "ips.mode"), &[("", "default"), ("off", "off"), ("detect", "detect"), ("block", "block")]))
                (errs_for(errors, "ips.mode"))
                label for="ips.threshold" { "Threshold" }
                input type="text" name="ips.threshold" id="ips.threshold" value=(field(f, "ips.threshold"));
                (errs_for(errors, "ips.threshold"))
                label for="ips.disable" { "Disabled rule ids" }
                input type="text" name="ips.disable" id="ips.disable" value=(field(f, "ips.disable"));
                (errs_for(errors, "ips.disable"))
                label for="ips.exclude" { "Exclusions (JSON list, each with rules, classes, paths, args and a note)" }
                textarea name="ips.exclude" id="ips.exclude" { (field(f, "ips.exclude")) }
                (errs_for(errors, "ips.exclude"))
                p {
                    button type="submit" formaction=(format!("/ui/instances/{}/acl/preview", enc(id)))
                        hx-post=(format!("/ui/instances/{}/acl/preview", enc(id))) hx-target="#preview" hx-select="#preview" { "Preview the effect" }
                    " "
                    @if !ro { button type="submit" id="save" { "Save" } }
                }
                div id="preview" {}
            }
        },
    )
}

pub async fn acl_form(
    State(d): State<Arc<Dash>>,
    u: User,
    Path(id): Path<String>,
    Query(q): Query<Fields>,
) -> Response {
    let acl = d.get(&u, &format!("/v1/instances/{}/acl", enc(&id))).await;
    if !acl.ok() {
        return acl.fail_page();
    }
    let notice = q
        .get("saved")
        .map(|r| html! { p.ok id="saved" { "Saved: revision " (r) ". The node applies it within a second." } });
    respond(
        StatusCode::OK,
        acl_page(
            &u,
            &id,
            acl.etag.as_deref().unwrap_or(""),
            &fields_of(&acl.json),
            &[],
            notice,
        ),
    )
}

pub async fn acl_save(
    State(d): State<Arc<Dash>>,
    u: User,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = u.csrf_refusal(field(&f, "csrf")) {
        return r;
    }
    let acl = match acl_of(&f) {
        Ok(a) => a,
        Err(errors) => {
            return respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                acl_page(&u, &id, field(&f, "etag"), &f, &errors, None),
            )
        }
    };
    let etag = field(&f, "etag");
    let r: Answer = d
        .call(
            &u,
            Method::PUT,
            &format!("/v1/instances/{}/acl", enc(&id)),
            Some(&acl),
            (!etag.is_empty()).then_some(etag),
        )
        .await;
    if r.ok() {
        let rev = r.json["revision"].as_i64().unwrap_or(0);
        return Redirect::to(&format!("/ui/instances/{}/acl?saved={rev}", enc(&id)))
            .into_response();
    }
    let notice = (r.status == StatusCode::PRECONDITION_FAILED).then(|| {
        html! { p.warn { "Someone changed this ACL meanwhile: reload the page to see their change." } }
    });
    respond(r.status, acl_page(&u, &id, etag, &f, &r.errors(), notice))
}

pub async fn acl_preview(
    State(d): State<Arc<Dash>>,
    u: User,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = u.csrf_refusal(field(&f, "csrf")) {
        return r;
    }
    let (status, errors, notice) = match acl_of(&f) {
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
        Ok(acl) => {
            let r = d
                .call(
                    &u,
                    Method::POST,
                    &format!("/v1/instances/{}/acl/preview", enc(&id)),
                    Some(&acl),
                    None,
                )
                .await;
            if r.ok() {
                let n = |k: &str| r.json[k].as_u64().unwrap_or(0);
                (
                    StatusCode::OK,
                    Vec::new(),
                    Some(html! {
                        div.warn id="preview" {
                            "This change would have refused " strong id="would" { (n("would_refuse")) }
                            " of the last hour's " (n("requests")) " sampled requests (refused now: " (n("refused_now")) ")."
                        }
                    }),
                )
            } else {
                (r.status, r.errors(), None)
            }
        }
    };
    // A preview always answers 200 (htmx swaps only 2xx): problems are shown in the page.
    let notice = notice.or_else(|| {
        (!status.is_success()).then(
            || html! { div.warn id="preview" { "No preview: the ACL has problems (below)." } },
        )
    });
    respond(
        StatusCode::OK,
        acl_page(&u, &id, field(&f, "etag"), &f, &errors, notice),
    )
}
