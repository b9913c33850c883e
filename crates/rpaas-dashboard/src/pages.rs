//! The pages. Each reads and writes through [`Dash::call`] (the `/v1` API in process), so a
//! partner sees exactly what its API key would, and every change passes the API's checks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::view::{chart, counts, error_page, page, respond, time};
use crate::{client_ip_of, cookie, enc, same, Answer, Dash, User, LOGIN_CSRF};

type Fields = HashMap<String, String>;

const CLASSES: [&str; 7] = [
    "agent",
    "deployment",
    "control_center",
    "web_control_center",
    "api",
    "portal",
    "other",
];

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k).map_or("", String::as_str)
}

fn csrf_field(u: &User) -> Markup {
    html! { input type="hidden" name="csrf" value=(u.session.csrf); }
}

// ---- login -------------------------------------------------------------------------------

fn login_page(token: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.warn { (e) } }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(token);
                label for="username" { "User name" }
                input type="text" id="username" name="username" autocomplete="username" autofocus;
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="current-password";
                p { button type="submit" id="login" { "Sign in" } }
            }
        },
    )
}

pub async fn login_form(State(d): State<Arc<Dash>>) -> Response {
    let token = rpaas_control::random_hex(16).unwrap_or_default();
    let mut r = respond(StatusCode::OK, login_page(&token, None));
    r.headers_mut()
        .append(header::SET_COOKIE, d.cookie(LOGIN_CSRF, &token, 3600));
    r
}

pub async fn login(
    State(d): State<Arc<Dash>>,
    headers: HeaderMap,
    parts: axum::http::Extensions,
    Form(f): Form<Fields>,
) -> Response {
    let ip = client_ip_of(&parts);
    let token = rpaas_control::random_hex(16).unwrap_or_default();
    let again = |status: StatusCode, why: &str| {
        let mut r = respond(status, login_page(&token, Some(why)));
        r.headers_mut()
            .append(header::SET_COOKIE, d.cookie(LOGIN_CSRF, &token, 3600));
        r
    };
    let csrf_ok = cookie(&headers, LOGIN_CSRF).is_some_and(|c| same(c, field(&f, "csrf")));
    if !csrf_ok {
        return again(
            StatusCode::FORBIDDEN,
            "the form expired (CSRF check): sign in again",
        );
    }
    if d.control.failures.locked(ip) {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins from this address; wait a minute",
        );
    }
    let user = match d.control.store.user_by_name(field(&f, "username")).await {
        Ok(u) => u,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let Some(user) = user.filter(|u| u.verify(field(&f, "password"))) else {
        d.control.failures.fail(ip);
        tracing::warn!(target: "rpaas::control", event = "login_failed", client_ip = %ip, "dashboard sign-in failed");
        return again(StatusCode::UNAUTHORIZED, "wrong user name or password");
    };
    match d.control.store.create_session(&user).await {
        Ok((token, _)) => {
            tracing::info!(target: "rpaas::control", event = "login", user = %user.name, client_ip = %ip, "dashboard sign-in");
            let mut r = Redirect::to("/ui/instances").into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                d.cookie(
                    crate::COOKIE,
                    &token,
                    rpaas_control::users::SESSION_MS / 1000,
                ),
            );
            h.append(header::SET_COOKIE, d.cookie(LOGIN_CSRF, "", 0));
            r
        }
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

pub async fn logout(
    State(d): State<Arc<Dash>>,
    headers: HeaderMap,
    u: User,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = u.csrf_refusal(field(&f, "csrf")) {
        return r;
    }
    if let Some(t) = cookie(&headers, crate::COOKIE) {
        let _ = d.control.store.end_session(t).await;
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, d.cookie(crate::COOKIE, "", 0));
    r
}

// ---- instances ---------------------------------------------------------------------------

pub async fn instances(State(d): State<Arc<Dash>>, u: User) -> Response {
    let list = d.get(&u, "/v1/instances").await;
    if !list.ok() {
        return list.fail_page();
    }
    let mut rows = Vec::new();
    for i in list.json.as_array().cloned().unwrap_or_default() {
        let id = i["id"].as_str().unwrap_or_default().to_string();
        let st = d
            .get(&u, &format!("/v1/instances/{}/status?hours=24", enc(&id)))
            .await;
        rows.push((i, st.json));
    }
    respond(
        StatusCode::OK,
        page(
            "Instances",
            Some(&u),
            html! {
                h1 { "Instances" }
                table id="instances" {
                    tr { th { "Hostname" } th { "Deployment" } th { "Health" } th { "Requests 24 h" }
                         th { "Refusals 24 h" } th { "Revision" } th { "Certificate" } }
                    @for (i, st) in &rows {
                        @let id = i["id"].as_str().unwrap_or_default();
                        @let revision = i["revision"].as_i64().unwrap_or(0);
                        @let applied = st["applied_revision"].as_i64().unwrap_or(0);
                        tr {
                            td { a href=(format!("/ui/instances/{}", enc(id))) {
                                (i["hostnames"][0].as_str().unwrap_or(id)) } }
                            td { (i["spec"]["deployment"].as_str().unwrap_or("all-traffic")) }
                            td { @if applied >= revision { span.allow { "served" } }
                                 @else { span.deny { "change pending" } } }
                            td { (st["last_hour"]["requests"].as_i64().unwrap_or(0)) }
                            td { (st["last_hour"]["refusals"].as_i64().unwrap_or(0)) }
                            td { (revision) " (" (i["source"].as_str().unwrap_or("")) ")" }
                            td { (st["cert"]["source"].as_str().unwrap_or("-")) " "
                                 (st["cert"]["state"].as_str().unwrap_or("")) }
                        }
                    }
                }
            },
        ),
    )
}

fn per_minute(st: &Value) -> Vec<(i64, i64, i64)> {
    st["last_hour"]["per_minute"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|m| {
                    (
                        m[0].as_i64().unwrap_or(0),
                        m[1].as_i64().unwrap_or(0),
                        m[2].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn decision_rows(list: &Value, id: &str) -> Markup {
    html! {
        table.decisions {
            tr { th { "Time" } th { "Client" } th { "Country" } th { "Request" } th { "Class" }
                 th { "Reason" } th { "Status" } th { "Node" } }
            @for r in list.as_array().cloned().unwrap_or_default() {
                @let ip = r["ip"].as_str().unwrap_or_default().to_string();
                tr {
                    td { (time(r["time"].as_i64().unwrap_or(0))) }
                    td { a href=(format!("/ui/instances/{}/decisions?ip={}", enc(id), enc(&ip))) { (ip) } }
                    td { (r["country"].as_str().unwrap_or("")) }
                    td.mono { (r["method"].as_str().unwrap_or("")) " " (r["path"].as_str().unwrap_or("")) }
                    td { (r["class"].as_str().unwrap_or("")) }
                    td.deny.mono { (r["reason"].as_str().unwrap_or("")) }
                    td { (r["status"].as_i64().unwrap_or(0)) }
                    td { (r["node"].as_str().unwrap_or("")) }
                }
            }
        }
    }
}

pub async fn instance(State(d): State<Arc<Dash>>, u: User, Path(id): Path<String>) -> Response {
    let inst = d.get(&u, &format!("/v1/instances/{}", enc(&id))).await;
    if !inst.ok() {
        return inst.fail_page();
    }
    let st = d
        .get(&u, &format!("/v1/instances/{}/status?hours=24", enc(&id)))
        .await;
    let recent = d
        .get(
            &u,
            &format!("/v1/instances/{}/decisions?limit=20", enc(&id)),
        )
        .await;
    let tls = &st.json["tls_versions"];
    let legacy: i64 = ["TLSv1", "TLSv1.1"]
        .iter()
        .map(|v| tls[*v].as_i64().unwrap_or(0))
        .sum();
    let host = inst.json["hostnames"][0]
        .as_str()
        .unwrap_or(&id)
        .to_string();
    let now_minute = rpaas_control::store::now_ms() / 60_000;
    respond(
        StatusCode::OK,
        page(
            &host,
            Some(&u),
            html! {
                h1 { (host) }
                p {
                    "Deployment " strong { (inst.json["spec"]["deployment"].as_str().unwrap_or("all-traffic")) }
                    " · revision " (inst.json["revision"]) " · served by node " (st.json["node"].as_str().unwrap_or(""))
                    " at store revision " (st.json["applied_revision"])
                    " · " a href=(format!("/ui/instances/{}/acl", enc(&id))) { "Edit the ACL" }
                }
                div.grid {
                    div.card { div.num id="requests" { (st.json["last_hour"]["requests"].as_i64().unwrap_or(0)) } "requests (24 h)" }
                    div.card { div.num id="refusals" { (st.json["last_hour"]["refusals"].as_i64().unwrap_or(0)) } "refusals (24 h)" }
                    div.card { div.num { (st.json["agents_seen"].as_i64().unwrap_or(0)) } "agents seen (1 h)" }
                    div.card { div.num { (legacy) } "legacy-TLS requests (24 h)" }
                }
                h2 { "Traffic and refusals per hour" }
                (chart(&per_minute(&st.json), now_minute))
                div.grid {
                    (counts("Refusals by reason", &st.json["last_hour"]["refusals_by_reason"]))
                    (counts("Refusals by country", &st.json["last_hour"]["refusals_by_country"]))
                    (counts("Refusals by class", &st.json["last_hour"]["refusals_by_class"]))
                    (counts("TLS versions", tls))
                }
                h2 { "Why was an address refused?" }
                form method="get" action=(format!("/ui/instances/{}/decisions", enc(&id))) {
                    input type="text" name="ip" placeholder="client IP address";
                    " " button type="submit" { "Look up" }
                }
                h2 { "Recent refusals" }
                (decision_rows(&recent.json, &id))
            },
        ),
    )
}

fn explain_block(e: &Value) -> Markup {
    let denied = e["verdict"] == "DENY";
    html! {
        table.explain {
            tr { th { "Verdict" } td { @if denied { span.deny { "DENY " (e["reason"].as_str().unwrap_or("")) } }
                                       @else { span.allow { "ALLOW" } } } }
            tr { th { "Client" } td { (e["client_ip"].as_str().unwrap_or(""))
                 @if e["trusted"] == true { " (trusted network)" } @else { " (not in a trusted network)" } } }
            tr { th { "Request" } td.mono { (e["method"].as_str().unwrap_or("")) " " (e["target"].as_str().unwrap_or("")) } }
            tr { th { "Class" } td { (e["class"].as_str().unwrap_or("-"))
                 @if let Some(a) = e["access"].as_str() { " (access: " (a) ")" } } }
            tr { th { "Country" } td { (e["country"].as_str().unwrap_or("--")) } }
            tr { th { "Rule" } td { (e["rule"].as_str().unwrap_or("")) } }
            @if let Some(m) = e["ips_matches"].as_array().filter(|m| !m.is_empty()) {
                tr { th { "IPS" } td { @for x in m { div.mono { (x.as_str().unwrap_or("")) } } } }
            }
        }
    }
}

fn what_if_form(u: &User, id: &str, ip: &str, method: &str, path: &str) -> Markup {
    html! {
        form id="whatif" method="post" action=(format!("/ui/instances/{}/explain", enc(id)))
            hx-post=(format!("/ui/instances/{}/explain", enc(id))) hx-target="#whatif-result" hx-select="#whatif-result" {
            (csrf_field(u))
            input type="text" name="ip" value=(ip) placeholder="client IP";
            " " input type="text" name="method" value=(method) size="6";
            " " input type="text" name="path" value=(path) placeholder="/automate/";
            " " button type="submit" { "Explain" }
        }
    }
}

pub async fn decisions(
    State(d): State<Arc<Dash>>,
    u: User,
    Path(id): Path<String>,
    Query(q): Query<Fields>,
) -> Response {
    let ip = field(&q, "ip").trim().to_string();
    let inst = d.get(&u, &format!("/v1/instances/{}", enc(&id))).await;
    if !inst.ok() {
        return inst.fail_page();
    }
    let list = d
        .get(
            &u,
            &format!(
                "/v1/instances/{}/decisions?ip={}&limit=100",
                enc(&id),
                enc(&ip)
            ),
        )
        .await;
    if !list.ok() {
        return list.fail_page();
    }
    let mut explained = Vec::new();
    for r in list
        .json
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .take(20)
    {
        let q = json!({"ip": r["ip"], "method": r["method"], "path": r["path"]});
        let e = d
            .call(
                &u,
                Method::POST,
                &format!("/v1/instances/{}/explain", enc(&id)),
                Some(&q),
                None,
            )
            .await;
        explained.push((r.clone(), e.json));
    }
    respond(
        StatusCode::OK,
        page(
            "Decisions",
            Some(&u),
            html! {
                h1 { "Decisions for " span.mono id="ip" { (ip) } }
                p { a href=(format!("/ui/instances/{}", enc(&id))) { "Back to the instance" } }
                @if explained.is_empty() { p id="none" { "No recent refusal of this address." } }
                @for (r, e) in &explained {
                    h2 { (time(r["time"].as_i64().unwrap_or(0))) ": "
                         span.deny.mono.reason { (r["reason"].as_str().unwrap_or("")) } " "
                         span.mono { (r["method"].as_str().unwrap_or("")) " " (r["path"].as_str().unwrap_or("")) } }
                    p { "Refused with " (r["status"]) " by node " (r["node"].as_str().unwrap_or(""))
                        " (class " (r["class"].as_str().unwrap_or("")) ", country " (r["country"].as_str().unwrap_or("--")) "). "
                        "The same request now:" }
                    (explain_block(e))
                }
                h2 { "What if?" }
                (what_if_form(&u, &id, &ip, "GET", explained.first().and_then(|(r, _)| r["path"].as_str()).unwrap_or("/")))
                div id="whatif-result" {}
            },
        ),
    )
}

pub async fn what_if(
    State(d): State<Arc<Dash>>,
    u: User,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = u.csrf_refusal(field(&f, "csrf")) {
        return r;
    }
    let q = json!({"ip": field(&f, "ip").trim(), "method": field(&f, "method").trim(), "path": field(&f, "path").trim()});
    let e = d
        .call(
            &u,
            Method::POST,
            &format!("/v1/instances/{}/explain", enc(&id)),
            Some(&q),
            None,
        )
        .await;
    let result = if e.ok() {
        explain_block(&e.json)
    } else {
        html! { @for (f, r) in e.errors() { span.err { (f) ": " (r) } } }
    };
    // Always 200 (htmx swaps only 2xx): problems are shown in the page.
    respond(
        StatusCode::OK,
        page(
            "What if?",
            Some(&u),
            html! {
                h1 { "What if?" }
                (what_if_form(&u, &id, field(&f, "ip"), field(&f, "method"), field(&f, "path")))
                div id="whatif-result" { (result) }
                p { a href=(format!("/ui/instances/{}", enc(&id))) { "Back to the instance" } }
            },
        ),
    )
}

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

fn select(name: &str, current: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        select name=(name) id=(name) {
            @for (v, label) in options {
                option value=(v) selected[*v == current] { (label) }
            }
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

// ---- audit and keys ----------------------------------------------------------------------

pub async fn audit(State(d): State<Arc<Dash>>, u: User) -> Response {
    let rows = d.get(&u, "/v1/audit?limit=200").await;
    if !rows.ok() {
        return rows.fail_page();
    }
    respond(
        StatusCode::OK,
        page(
            "Audit",
            Some(&u),
            html! {
                h1 { "Audit" }
                table id="audit" {
                    tr { th { "Time" } th { "Who" } th { "From" } th { "Action" } th { "Instance" } th { "Revision" } th { "After" } }
                    @for r in rows.json.as_array().cloned().unwrap_or_default() {
                        tr {
                            td { (time(r["time"].as_i64().unwrap_or(0))) }
                            td.actor { (r["actor"].as_str().unwrap_or("")) }
                            td { (r["source_ip"].as_str().unwrap_or("")) }
                            td.action { (r["action"].as_str().unwrap_or("")) }
                            td { (r["instance"].as_str().unwrap_or("")) }
                            td { (r["revision"]) }
                            td.mono { (r["after"].to_string().chars().take(300).collect::<String>()) }
                        }
                    }
                }
            },
        ),
    )
}

fn keys_page(u: &User, keys: &Value, created: Option<&str>, errors: &[(String, String)]) -> Markup {
    page(
        "API keys",
        Some(u),
        html! {
            h1 { "API keys" }
            @if let Some(k) = created {
                p.ok { "The new key (shown once, copy it now): " code id="newkey" { (k) } }
            }
            @for (f, r) in errors { p.err { (f) ": " (r) } }
            table id="keys" {
                tr { th { "Name" } th { "Scope" } th { "Partner" } th { "Prefix" } th { "Expires" } th { "Last used" } th {} }
                @for k in keys.as_array().cloned().unwrap_or_default() {
                    tr {
                        td { (k["name"].as_str().unwrap_or("")) }
                        td { (k["scope"].as_str().unwrap_or("")) }
                        td { (k["partner"].as_str().unwrap_or("")) }
                        td.mono { (k["prefix"].as_str().unwrap_or("")) "…" }
                        td { (k["expires"].as_i64().map(time).unwrap_or_else(|| "never".into())) }
                        td { (k["last_used"].as_i64().map(time).unwrap_or_else(|| "-".into())) }
                        td { @if u.can_write() {
                            form method="post" action=(format!("/ui/keys/{}/revoke", enc(k["id"].as_str().unwrap_or("")))) {
                                (csrf_field(u)) button type="submit" { "Revoke" }
                            }
                        } }
                    }
                }
            }
            @if u.can_write() {
                h2 { "New key" }
                form method="post" action="/ui/keys" {
                    (csrf_field(u))
                    label for="name" { "Name" }
                    input type="text" name="name" id="name";
                    @if u.is_operator() {
                        label for="scope" { "Scope" }
                        (select("scope", "partner", &[("partner", "partner"), ("operator", "operator")]))
                        label for="partner" { "Partner (for a partner key)" }
                        input type="text" name="partner" id="partner";
                    }
                    p { button type="submit" { "Create" } }
                }
            }
        },
    )
}

pub async fn keys(State(d): State<Arc<Dash>>, u: User) -> Response {
    let k = d.get(&u, "/v1/keys").await;
    if !k.ok() {
        return k.fail_page();
    }
    respond(StatusCode::OK, keys_page(&u, &k.json, None, &[]))
}

pub async fn key_create(State(d): State<Arc<Dash>>, u: User, Form(f): Form<Fields>) -> Response {
    if let Some(r) = u.csrf_refusal(field(&f, "csrf")) {
        return r;
    }
    let mut body = json!({"name": field(&f, "name")});
    if u.is_operator() {
        body["scope"] = json!(field(&f, "scope"));
        if !field(&f, "partner").is_empty() {
            body["partner"] = json!(field(&f, "partner"));
        }
    } else {
        body["scope"] = json!("partner");
        body["partner"] = json!(u.session.user.partner.clone().unwrap_or_default());
    }
    let r = d
        .call(&u, Method::POST, "/v1/keys", Some(&body), None)
        .await;
    let list = d.get(&u, "/v1/keys").await;
    if r.ok() {
        respond(
            StatusCode::CREATED,
            keys_page(&u, &list.json, r.json["key"].as_str(), &[]),
        )
    } else {
        respond(r.status, keys_page(&u, &list.json, None, &r.errors()))
    }
}

pub async fn key_revoke(
    State(d): State<Arc<Dash>>,
    u: User,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = u.csrf_refusal(field(&f, "csrf")) {
        return r;
    }
    let r = d
        .call(
            &u,
            Method::DELETE,
            &format!("/v1/keys/{}", enc(&id)),
            None,
            None,
        )
        .await;
    if r.ok() {
        Redirect::to("/ui/keys").into_response()
    } else {
        r.fail_page()
    }
}
