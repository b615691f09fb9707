//! The client's IP: the socket peer, or behind trusted proxies the first untrusted
//! `X-Forwarded-For` hop from the right.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::domain::ip::normalize;

/// Never trusts `X-Forwarded-For` from an untrusted peer, so a client cannot pick its own IP.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = normalize(req.peer_addr()?.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut leftmost = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(normalize) else {
            // An unparsable hop ends the chain we can believe.
            return Some(leftmost);
        };
        if !is_trusted(&ip) {
            return Some(ip);
        }
        leftmost = ip;
    }
    Some(leftmost)
}
