//! The one integration test binary: every test starts its own app on its own database.

mod gateway_harness;
mod helpers;
mod migrations;
mod proxy;
mod smoke;
mod store_conformance;
mod store_quotas;
mod store_values;
mod test_db;
mod webhook_receiver;

// In-process library operations (SPEC A5).
mod library_create;
mod library_lifecycle;
mod library_manage;
mod library_manager;
mod library_rotate;
mod library_verify;

// Concurrency, failure and the command line.
mod cli;
mod concurrency;
mod sabotage;

// HTTP routes (SPEC A7).
mod route_access;
mod routes_body_rules;
mod routes_client_ip;
mod routes_hostile_input;
mod routes_manage_actions;
mod routes_manage_auth;
mod routes_public;

// Rate limits (SPEC A8).
mod limits_bans;
mod limits_management;
mod limits_verify;

// Verification at memory speed: cache, batched counting, outages.
mod batched_counting;
mod outage;
mod round_trips;
mod verify_cache;

// Admin API, metadata and the audit log (SPEC B1, B2).
mod admin_metadata;
mod admin_tokens;
mod admin_verify_and_bans;
mod audit_log;
mod audit_migration;
mod audit_trail;
mod token_bulk;
mod token_rotation;
mod token_state;

// Hardening found by testing from outside (issue 11).
mod owner_identity;
mod slow_clients;

// Roles and permissions (SPEC B4).
mod access_roles;
mod access_verify;

// Several instances act as one, through Redis (SPEC B6); a slow Redis costs one call.
mod redis_breaker;
mod shared_instances;

// Customer rate limits and credits (SPEC B5), on one instance and on several.
mod quotas;
mod quotas_shared;

// Scoped admin credentials and actors (SPEC B9).
mod admin_credentials;
mod admin_scopes;
mod credential_fleet;

// Verification analytics (SPEC B11).
mod analytics;
mod webhook_delivery;
mod webhook_events;
mod webhooks;

// The machine-readable contract (SPEC B7).
mod metrics;
mod openapi;

// Forward-auth through real nginx and Caddy with the shipped configs (SPEC B13).
mod gateways;

// Forward-auth for gateways (SPEC B13).
mod forward_auth;
mod forward_auth_denials;
mod forward_auth_replays;
mod forward_auth_rules;

// The admin console (SPEC B14).
mod console;

// The admin console in a real browser (SPEC B14).
mod browser_harness;
mod console_browser;
mod console_browser_manage;
