//! Request counting for `/metrics`: every route of the table is wrapped, outermost, in a
//! counter of its answers by status (`iam_http_requests_total`); BFF actions are counted
//! each on its own path.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::Error;

use super::bff::Action;
use super::AppState;

/// Where a route's series start in the list given to `Metrics::new` (`routes::request_series`).
#[derive(Debug, Clone, Copy)]
pub(super) enum RouteSeries {
    One(usize),
    /// The seven actions, then an unknown action.
    PerAction(usize),
}

/// Counts the answer of the wrapped route.
pub(super) async fn count(
    series: RouteSeries,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = match series {
        RouteSeries::One(id) => id,
        RouteSeries::PerAction(first) => {
            let action = req.match_info().get("action").unwrap_or_default();
            first
                + Action::ALL
                    .iter()
                    .position(|known| known.as_str() == action)
                    .unwrap_or(Action::ALL.len())
        }
    };
    let response = next.call(req).await?;
    if let Some(state) = response.request().app_data::<Data<AppState>>() {
        state.metrics.request(id, response.status().as_u16());
    }
    Ok(response)
}
