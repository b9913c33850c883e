//! Page frame, error pages, the traffic chart (inline SVG) and small formatting helpers.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::User;

/// The page frame: header with navigation and the signed-in user, then `body`.
pub fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rpaas" }
                link rel="stylesheet" href="/ui/assets/style.css";
                // No inline styles: the CSP allows none.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                script src="/ui/assets/htmx.min.js" defer {}
            }
            body {
                header {
                    strong { "rpaas" }
                    @if let Some(u) = user {
                        a href="/ui/instances" { "Instances" }
                        a href="/ui/audit" { "Audit" }
                        a href="/ui/keys" { "API keys" }
                        span.who {
                            (u.session.user.name) " (" (u.session.user.role.as_str())
                            @if let Some(p) = &u.session.user.partner { ", " (p) }
                            ")"
                        }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(u.session.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An error page with `status`.
pub fn error_page(status: StatusCode, why: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        Html(
            page(
                title,
                None,
                html! {
                    h1 { (status.as_u16()) " " (title) }
                    p { (why) }
                    p { a href="/ui/instances" { "Back to the instances" } }
                },
            )
            .into_string(),
        ),
    )
        .into_response()
}

/// A page as a response.
pub fn respond(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

/// Milliseconds since the epoch as RFC 3339 (UTC, seconds).
pub fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Requests and refusals per hour over the last 24 hours as a bar chart. `per_minute` is
/// `[minute, requests, refusals]`.
pub fn chart(per_minute: &[(i64, i64, i64)], now_minute: i64) -> Markup {
    let mut hours = [(0i64, 0i64); 24];
    for (m, r, f) in per_minute {
        let age = (now_minute - m) / 60;
        if (0..24).contains(&age) {
            let slot = 23 - age as usize;
            hours[slot].0 += r;
            hours[slot].1 += f;
        }
    }
    let max = hours.iter().map(|h| h.0).max().unwrap_or(0).max(1);
    let (w, h, bar) = (480i64, 120i64, 20i64);
    html! {
        svg width=(w) height=(h + 20) viewBox=(format!("0 0 {w} {}", h + 20)) role="img"
            aria-label="requests (blue) and refusals (red) per hour, last 24 hours" {
            @for (i, (r, f)) in hours.iter().enumerate() {
                @let x = i as i64 * bar;
                @let rh = r * h / max;
                @let fh = f * h / max;
                rect.req x=(x + 2) y=(h - rh) width=(bar - 4) height=(rh) {
                    title { (r) " requests, " (f) " refused" }
                }
                rect.ref x=(x + 2) y=(h - fh) width=(bar - 4) height=(fh) {}
            }
            text x="0" y=(h + 15) font-size="11" { "24 h ago" }
            text x=(w - 30) y=(h + 15) font-size="11" { "now" }
        }
    }
}

/// A JSON map of counts as a two-column table.
pub fn counts(title: &str, v: &serde_json::Value) -> Markup {
    let mut rows: Vec<(String, i64)> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    html! {
        div.card {
            h2 { (title) }
            @if rows.is_empty() { p { "none" } } @else {
                table { @for (k, n) in &rows { tr { td.mono { (k) } td { (n) } } } }
            }
        }
    }
}
