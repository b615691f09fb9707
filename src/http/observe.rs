//! Request counting for `/metrics`: every route of the table is wrapped, outermost, in a
//! counter of its answers by status (`iam_http_requests_total`); BFF actions are counted
//! each on its own path.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::Error;

use super::bff::Action;
use super::routes::{Doc, TABLE};
use super::AppState;

/// Where a route's series start in the list given to `Metrics::new`.
#[derive(Debug, Clone, Copy)]
pub(super) enum RouteSeries {
    One(usize),
    /// The seven actions, then an unknown action.
    PerAction(usize),
}

/// The request series, in order: each route of the table (a BFF route as its seven actions
/// and an unknown one), then requests no route matched.
pub fn request_series() -> Vec<(&'static str, String)> {
    let mut series = Vec::new();
    for entry in TABLE {
        let spec = entry.spec;
        match entry.doc {
            Doc::One(..) => series.push((spec.method.unwrap_or("*"), spec.path.to_owned())),
            Doc::PerAction => {
                for action in Action::ALL {
                    let path = spec.path.replace("{action}", action.as_str());
                    series.push((action.method(), path));
                }
                series.push(("*", spec.path.to_owned()));
            }
        }
    }
    series.push(("*", "unmatched".to_owned()));
    series
}

/// Each table entry's place in `request_series`, in table order, and the unmatched one.
pub(super) fn series_of_entries() -> (Vec<RouteSeries>, usize) {
    let mut next = 0;
    let mut places = Vec::with_capacity(TABLE.len());
    for entry in TABLE {
        match entry.doc {
            Doc::One(..) => {
                places.push(RouteSeries::One(next));
                next += 1;
            }
            Doc::PerAction => {
                places.push(RouteSeries::PerAction(next));
                next += Action::ALL.len() + 1;
            }
        }
    }
    (places, next)
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
