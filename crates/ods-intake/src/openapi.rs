//! The OpenAPI description of the intake API, generated from the handlers and types (utoipa).

use chrono::{DateTime, NaiveDate, Utc};
use ods_http::Problem;
use ods_validation::Violation;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::registry::VersionEntry;
use crate::service::Accepted;

/// The JSON body of a notification (`POST /api/v1/notifications`, `PUT .../{id}`). Unknown fields
/// are rejected; the reporter comes from the token, never from the body.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct NotificationBody {
    /// Occupational health service id (see `/api/v1/codelists/services`); leave out when self-employed.
    #[schema(example = "AD0001")]
    service_id: Option<String>,
    /// `true` for a self-employed company doctor (instead of `service_id`).
    self_employed: Option<bool>,
    /// CAS diagnosis code: a letter and three digits.
    #[schema(example = "L694")]
    diagnosis_code: String,
    /// 1 to 5 causal exposures, exactly one primary.
    exposures: Vec<ExposureBody>,
    /// Sector code (SBI-2008 section letter or code).
    #[schema(example = "1071")]
    sector_code: String,
    /// ISCO-08 occupation code, 2 to 4 digits.
    #[schema(example = "7512")]
    occupation_code: String,
    /// `M`, `F` or `X`.
    #[schema(example = "F")]
    sex: String,
    /// Birth year of the worker (never a birth date).
    #[schema(example = 1980)]
    birth_year: i32,
    /// Date of diagnosis, not in the future.
    diagnosis_date: NaiveDate,
    /// `none`, `temporary`, `permanent` or `death`.
    #[schema(example = "temporary")]
    consequence: String,
    /// `lt1m`, `1to3m`, `3to6m`, `gt6m` or `unknown`.
    #[schema(example = "1to3m")]
    absence_band: String,
    /// `absence_guidance`, `consultation` or `pmo_pago`.
    #[schema(example = "absence_guidance")]
    detection_route: String,
    /// Advice types given: `treatment`, `organisational`, `behavioural`, `further_medical`,
    /// `workplace_survey`, `ppe`, `technical`; empty or absent when none.
    prevention_advice: Option<Vec<String>>,
    /// NCvB registration guideline code, if one applies.
    #[schema(example = "D001")]
    guideline_code: Option<String>,
}

/// One exposure of a notification.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ExposureBody {
    /// Exposure code (see `/api/v1/codelists/exposures`).
    #[schema(example = "ER003")]
    code: String,
    /// Whether this is the primary exposure.
    primary: bool,
}

/// `DELETE /api/v1/notifications/{id}` body.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct WithdrawalBody {
    /// `duplicate`, `not_occupational`, `entered_in_error` or `other`.
    #[schema(example = "not_occupational")]
    reason: String,
}

/// `POST /api/v1/zero-reports` body.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ZeroReportBody {
    /// The month without cases, `YYYY-MM`, not in the future.
    #[schema(example = "2024-03")]
    period: String,
}

/// Answer to a zero report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZeroReportAccepted {
    /// The month.
    pub period: String,
    /// `accepted`.
    pub status: String,
}

/// A notification as its reporter sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDetail {
    /// Id.
    pub id: String,
    /// Latest version (also the `ETag`).
    pub version: u32,
    /// `accepted` (not processed yet), `validated`, `rejected` or `withdrawn`.
    pub status: String,
    /// Why the processor rejected the latest version (field, value, rule, message).
    #[schema(value_type = Option<Vec<Object>>)]
    pub reasons: Option<serde_json::Value>,
    /// When it was first filed.
    pub notified_at: DateTime<Utc>,
    /// The current content (the JSON contract).
    #[schema(value_type = Option<Object>)]
    pub notification: Option<serde_json::Value>,
    /// Every version.
    pub history: Vec<VersionEntry>,
}

/// One line of the own-notifications overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationSummary {
    /// Id.
    pub id: String,
    /// Latest version.
    pub version: u32,
    /// Processing status.
    pub status: String,
    /// When it was first filed.
    pub notified_at: DateTime<Utc>,
    /// Diagnosis of the current version.
    pub diagnosis_code: Option<String>,
}

/// A page of the own-notifications overview, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// The notifications.
    pub items: Vec<NotificationSummary>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<String>,
}

/// Code list search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeListHits {
    /// The list searched.
    pub list: String,
    /// Its version.
    pub version: String,
    /// Hits, best first: `{entry, score}`.
    #[schema(value_type = Vec<Object>)]
    pub items: serde_json::Value,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The intake API.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::http::file_notification,
        crate::http::list_notifications,
        crate::http::get_notification,
        crate::http::amend_notification,
        crate::http::withdraw_notification,
        crate::http::file_batch,
        crate::http::file_zero_report,
        crate::http::search_codelist,
    ),
    components(schemas(
        NotificationBody, ExposureBody, WithdrawalBody, ZeroReportBody, ZeroReportAccepted,
        NotificationDetail, NotificationSummary, NotificationPage, CodeListHits, Accepted,
        Problem, Violation, VersionEntry
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "intake", description = "Company doctors file and manage notifications"))
)]
pub struct IntakeApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_body_has_exactly_the_validated_fields() {
        let spec = serde_json::to_value(IntakeApi::openapi()).unwrap();
        let properties = spec["components"]["schemas"]["NotificationBody"]["properties"]
            .as_object()
            .unwrap();
        let mut documented: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut validated = ods_validation::NOTIFICATION_FIELDS.to_vec();
        documented.sort();
        validated.sort();
        assert_eq!(documented, validated);
    }
}

/// The error answers of the API, one type per status with its description, listed in each
/// route's `responses(...)` (documentation only: handlers answer with [`Problem`]).
#[allow(dead_code)]
pub mod errors {
    use ods_http::Problem;
    use utoipa::IntoResponses;

    /// 400.
    #[derive(IntoResponses)]
    #[response(
        status = 400,
        description = "malformed request",
        content_type = "application/problem+json"
    )]
    pub struct MalformedRequest(Problem);

    /// 401, 403, 429 and 503: what any authenticated route may answer.
    #[derive(IntoResponses)]
    pub enum AccessErrors {
        /// 401.
        #[response(
            status = 401,
            description = "no or unknown token",
            content_type = "application/problem+json"
        )]
        Unauthenticated(Problem),
        /// 403.
        #[response(
            status = 403,
            description = "the token's role may not do this",
            content_type = "application/problem+json"
        )]
        Forbidden(Problem),
        /// 429.
        #[response(
            status = 429,
            description = "rate limit; see Retry-After",
            content_type = "application/problem+json"
        )]
        RateLimited(Problem),
        /// 503.
        #[response(
            status = 503,
            description = "unavailable (log or broker not confirming, token store down, or the registry still reading the topic); not accepted: retry after Retry-After with the same Idempotency-Key",
            content_type = "application/problem+json"
        )]
        Unavailable(Problem),
    }

    /// 413, 415 and 422: what a route with a JSON body may answer.
    #[derive(IntoResponses)]
    pub enum BodyErrors {
        /// 413.
        #[response(
            status = 413,
            description = "the body is too large",
            content_type = "application/problem+json"
        )]
        TooLarge(Problem),
        /// 415.
        #[response(
            status = 415,
            description = "wrong Content-Type",
            content_type = "application/problem+json"
        )]
        WrongContentType(Problem),
        /// 422.
        #[response(
            status = 422,
            description = "rule violations, all listed (field, value, rule, message)",
            content_type = "application/problem+json"
        )]
        RuleViolations(Problem),
    }

    /// 404.
    #[derive(IntoResponses)]
    #[response(
        status = 404,
        description = "no such notification of yours",
        content_type = "application/problem+json"
    )]
    pub struct NotYours(Problem);

    /// 404 of the code lists.
    #[derive(IntoResponses)]
    #[response(
        status = 404,
        description = "no such code list",
        content_type = "application/problem+json"
    )]
    pub struct NoSuchList(Problem);

    /// 409 and 412: what a change of an existing notification may answer.
    #[derive(IntoResponses)]
    pub enum ChangeErrors {
        /// 409.
        #[response(
            status = 409,
            description = "the notification was withdrawn",
            content_type = "application/problem+json"
        )]
        Withdrawn(Problem),
        /// 412.
        #[response(
            status = 412,
            description = "If-Match names another version",
            content_type = "application/problem+json"
        )]
        VersionMismatch(Problem),
    }

    /// 415 of the batch upload.
    #[derive(IntoResponses)]
    #[response(
        status = 415,
        description = "wrong Content-Type: use application/x-ndjson or text/csv",
        content_type = "application/problem+json"
    )]
    pub struct WrongBatchType(Problem);
}
