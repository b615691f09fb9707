//! What the service tells its operators: logs (tracing) and Prometheus metrics.

mod help;
mod labels;
mod logs;
pub mod metrics;
mod redis;
mod tally;
pub mod webhooks;

pub use logs::init;
pub use metrics::Metrics;
