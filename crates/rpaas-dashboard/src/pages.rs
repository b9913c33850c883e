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
use crate::{client_ip_of, cookie, enc, same, Dash, User, LOGIN_CSRF};

pub(crate) type Fields = HashMap<String, String>;

pub(crate) const CLASSES: [&str; 7] = [
    "agent",
    "deployment",
    "control_center",
    "web_control_center",
    "api",
    "portal",
    "other",
];

pub(crate) fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k).map_or("", String::as_str)
}

pub(crate) fn csrf_field(u: &User) -> Markup {
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

pub(crate) fn select(name: &str, current: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        select name=(name) id=(name) {
            @for (v, label) in options {
                option value=(v) selected[*v == current] { (label) }
            }
        }
    }
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
