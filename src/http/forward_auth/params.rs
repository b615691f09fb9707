//! Our own query parameters, as a gateway's configuration writes them into our URL:
//! `dialect` (how denials are sent) and a policy for this call (`privilege`, `permissions`,
//! `cost`, `limits`, `expose_metadata`). Envoy's tail form has none: there the query is the
//! client's own.

use std::borrow::Cow;

use super::super::query_params::decoded;

/// Who asks, for how a denial is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Caddy, Traefik, Envoy: a denial's status reaches the client as sent.
    #[default]
    Plain,
    /// nginx, which turns any auth answer but 2xx, 401 and 403 into a 500: 400, 429 and 503
    /// are sent as 403 with `X-Auth-Code`, and the shipped snippet turns them back.
    Nginx,
}

impl Dialect {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "nginx" => Some(Self::Nginx),
            "caddy" | "traefik" | "envoy" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// The parameters as sent (decoded).
#[derive(Debug, Default, PartialEq)]
pub struct Params<'q> {
    pub dialect: Dialect,
    pub privilege: Option<Cow<'q, str>>,
    /// As sent (still encoded): the permission query cache's key.
    pub permissions: Option<&'q str>,
    pub cost: Option<Cow<'q, str>>,
    pub limits: Option<Cow<'q, str>>,
    pub expose_metadata: bool,
}

impl Params<'_> {
    /// Whether the call brings its own policy (else the rules give it).
    pub fn has_policy(&self) -> bool {
        self.privilege.is_some()
            || self.permissions.is_some()
            || self.cost.is_some()
            || self.limits.is_some()
            || self.expose_metadata
    }
}

/// A parameter given twice or with a value it cannot have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter {name}: {problem}")]
pub struct ParamError {
    pub name: &'static str,
    pub problem: &'static str,
}

/// Reads our query; parameters of other names are left alone.
pub fn params(query: &str) -> Result<Params<'_>, ParamError> {
    let mut params = Params::default();
    let mut seen = [false; 6];
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decoded(name);
        let (slot, name) = match name.as_ref() {
            "dialect" => (0, "dialect"),
            "privilege" => (1, "privilege"),
            "permissions" => (2, "permissions"),
            "cost" => (3, "cost"),
            "limits" => (4, "limits"),
            "expose_metadata" => (5, "expose_metadata"),
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(ParamError {
                name,
                problem: "is given more than once",
            });
        }
        match slot {
            0 => {
                params.dialect = Dialect::parse(&decoded(value)).ok_or(ParamError {
                    name,
                    problem: "is nginx, caddy, traefik or envoy",
                })?
            }
            1 => params.privilege = Some(decoded(value)),
            2 => params.permissions = Some(value),
            3 => params.cost = Some(decoded(value)),
            4 => params.limits = Some(decoded(value)),
            _ => {
                params.expose_metadata = match decoded(value).as_ref() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ParamError {
                            name,
                            problem: "is true or false",
                        })
                    }
                }
            }
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameters_are_read_once_each_and_others_left_alone() {
        let read =
            params("dialect=nginx&cost=3&limits=search%3A2&permissions=a%20OR%20b&x=1").unwrap();
        assert_eq!(read.dialect, Dialect::Nginx);
        assert_eq!(read.cost.as_deref(), Some("3"));
        assert_eq!(read.limits.as_deref(), Some("search:2"));
        assert_eq!(read.permissions, Some("a%20OR%20b"));
        assert!(read.has_policy());
        assert!(!params("dialect=caddy&other=1").unwrap().has_policy());
        assert_eq!(params("").unwrap(), Params::default());
        #[rustfmt::skip]
        let bad = [
            ("dialect=apache",            "dialect"),
            ("cost=1&cost=2",             "cost"),
            ("dialect=nginx&dialect=nginx", "dialect"),
            ("expose_metadata=maybe",     "expose_metadata"),
        ];
        for (query, name) in bad {
            assert_eq!(params(query).unwrap_err().name, name, "{query}");
        }
    }
}
