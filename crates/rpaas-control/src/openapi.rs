//! The OpenAPI 3.1 document of `/v1`, generated from the handlers and types (`utoipa`), served
//! at `/v1/openapi.json`.

use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{instances, keys, observe};

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "x-api-key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        // OpenAPI requires a description on every response: the status's reason phrase where
        // a handler gave none.
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                for (code, r) in op.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(r) = r {
                        if r.description.is_empty() {
                            r.description = code
                                .parse::<u16>()
                                .ok()
                                .and_then(|c| axum::http::StatusCode::from_u16(c).ok())
                                .and_then(|c| c.canonical_reason())
                                .unwrap_or("response")
                                .to_string();
                        }
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rpaas control API",
        description = "Provision instances, change their ACLs, see their traffic and refusals (docs/api.md)."
    ),
    paths(
        keys::list_partners,
        keys::create_partner,
        instances::list,
        instances::create,
        instances::get_one,
        instances::patch,
        instances::delete,
        instances::get_acl,
        instances::put_acl,
        instances::preview_acl,
        observe::status,
        observe::decisions,
        observe::explain,
        observe::instance_audit,
        observe::audit,
        keys::list_keys,
        keys::create_key,
        keys::revoke_key,
        crate::fleet::list_nodes,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::FieldError,
        crate::store::Partner,
        crate::store::AuditRow,
        crate::store::DecisionRow,
        crate::ExplainQuery,
        instances::InstanceView,
        instances::CreateInstance,
        instances::Preview,
        keys::NewPartner,
        keys::KeyView,
        keys::NewKey,
        keys::CreatedKey,
        observe::Status,
        observe::Hour,
        crate::fleet::NodeView,
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

pub async fn document() -> impl IntoResponse {
    axum::Json(json())
}
