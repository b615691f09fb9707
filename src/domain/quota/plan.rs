//! Whose quotas a verification charges and how much: a token's limits and credits, its
//! owner's (a token limit shadows the owner's limit of the same name), and the costs a caller
//! asks for.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{Credits, LimitError, LimitName, RateLimit, RateLimits, Refill};
use crate::domain::UserId;

/// Whether a limit or credits belong to one token or to its owner (shared by all its tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Token,
    Owner,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Owner => "owner",
        }
    }

    /// Its code in the store (`quota_limits.scope`, `quota_credits.scope`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Token => "t",
            Self::Owner => "u",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "t" => Some(Self::Token),
            "u" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// What limits and credits are attached to: a token (by id) or an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Token(u64),
    Owner(UserId),
}

impl Subject {
    pub fn scope(self) -> Scope {
        match self {
            Self::Token(_) => Scope::Token,
            Self::Owner(_) => Scope::Owner,
        }
    }

    /// The token id or the owner id, as stored.
    pub fn id(self) -> u64 {
        match self {
            Self::Token(id) => id,
            Self::Owner(user) => user.get(),
        }
    }
}

/// The limits and credits of one subject, as stored (`remaining` without what instances have
/// taken out and not spent yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    pub limits: RateLimits,
    pub credits: Option<Credits>,
}

impl Quota {
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.credits.is_none()
    }

    /// Its limits' names, sorted (audit details).
    pub fn limit_names(&self) -> Vec<&str> {
        self.limits
            .iter()
            .map(|limit| limit.name.as_str())
            .collect()
    }
}

/// One limit as a verification of a token meets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLimit {
    pub scope: Scope,
    pub limit: RateLimit,
}

/// What a verification of one token is charged against: its limits and its owner's (owner
/// limits shadowed by a token limit of the same name left out), sorted by name; and which
/// of the two has credits, with their refill. Built once when the token is loaded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaPlan {
    pub limits: Vec<PlannedLimit>,
    /// `Some` when the token has credits (with its refill, if any).
    pub token_credits: Option<Option<Refill>>,
    pub owner_credits: Option<Option<Refill>>,
}

/// A caller-named limit that neither the token nor its owner has (its index in the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLimit {
    pub index: usize,
    pub name: LimitName,
}

/// What one verification costs: `cost` from every auto-applied limit and from the credits,
/// and each named limit's own cost (a named limit is charged once, at its named cost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub cost: u64,
    pub named: Vec<(LimitName, u64)>,
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            cost: 1,
            named: Vec::new(),
        }
    }
}

impl Usage {
    /// `cost` (0 … 10^9) and the named limits' costs, each checked; a name given twice is
    /// refused.
    pub fn new(cost: u64, named: Vec<(LimitName, u64)>) -> Result<Self, LimitError> {
        super::cost(cost)?;
        for (at, (name, cost)) in named.iter().enumerate() {
            super::cost(*cost)?;
            if named[..at].iter().any(|(other, _)| other == name) {
                return Err(LimitError::Duplicate(name.to_string()));
            }
        }
        Ok(Self { cost, named })
    }
}

/// The limits one verification charges (a few: kept inline, no allocation).
pub type Charges<'p> = SmallVec<[Charge<'p>; 4]>;

/// One limit charged by a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge<'p> {
    pub planned: &'p PlannedLimit,
    pub cost: u64,
}

impl QuotaPlan {
    /// The plan of a token with `token` quotas whose owner has `owner` quotas; `None` when
    /// neither has anything (verification then skips the step).
    pub fn of(token: &Quota, owner: &Quota) -> Option<Arc<Self>> {
        if token.is_empty() && owner.is_empty() {
            return None;
        }
        let mut limits: Vec<PlannedLimit> = token
            .limits
            .iter()
            .map(|limit| PlannedLimit {
                scope: Scope::Token,
                limit: limit.clone(),
            })
            .collect();
        let shadowed = token.limits.names();
        limits.extend(
            owner
                .limits
                .iter()
                .filter(|limit| !shadowed.contains(&limit.name))
                .map(|limit| PlannedLimit {
                    scope: Scope::Owner,
                    limit: limit.clone(),
                }),
        );
        limits.sort_by(|a, b| a.limit.name.cmp(&b.limit.name));
        Some(Arc::new(Self {
            limits,
            token_credits: token.credits.map(|credits| credits.refill),
            owner_credits: owner.credits.map(|credits| credits.refill),
        }))
    }

    fn find(&self, name: &LimitName) -> Option<&PlannedLimit> {
        self.limits
            .binary_search_by(|planned| planned.limit.name.cmp(name))
            .ok()
            .map(|at| &self.limits[at])
    }

    /// The limits `usage` charges: each auto-applied one at `usage.cost`, each named one at
    /// its own cost; a name the plan lacks is refused.
    pub fn charges<'p>(&'p self, usage: &Usage) -> Result<Charges<'p>, UnknownLimit> {
        let mut charges = Charges::new();
        for planned in &self.limits {
            let named = usage
                .named
                .iter()
                .find(|(name, _)| *name == planned.limit.name);
            match named {
                Some((_, cost)) => charges.push(Charge {
                    planned,
                    cost: *cost,
                }),
                None if planned.limit.auto_apply => charges.push(Charge {
                    planned,
                    cost: usage.cost,
                }),
                None => {}
            }
        }
        match Self::unknown_in(Some(self), usage) {
            Some(unknown) => Err(unknown),
            None => Ok(charges),
        }
    }

    /// The first limit `usage` names that the plan lacks (every one, for a token whose owner
    /// and itself have no quota at all: `plan` is `None`).
    pub fn unknown_in(plan: Option<&Self>, usage: &Usage) -> Option<UnknownLimit> {
        usage
            .named
            .iter()
            .enumerate()
            .find(|(_, (name, _))| plan.is_none_or(|plan| plan.find(name).is_none()))
            .map(|(index, (name, _))| UnknownLimit {
                index,
                name: name.clone(),
            })
    }

    /// The credit pools a verification spends from: the token's, then the owner's.
    pub fn credit_pools(&self) -> impl Iterator<Item = (Scope, Option<Refill>)> + '_ {
        let token = self.token_credits.map(|refill| (Scope::Token, refill));
        let owner = self.owner_credits.map(|refill| (Scope::Owner, refill));
        token.into_iter().chain(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, auto_apply: bool) -> RateLimit {
        RateLimit::new(LimitName::parse(name).unwrap(), 10, 60_000, auto_apply).unwrap()
    }

    fn quota(limits: Vec<RateLimit>) -> Quota {
        Quota {
            limits: RateLimits::new(limits).unwrap(),
            credits: None,
        }
    }

    #[test]
    fn a_token_limit_shadows_the_owners_limit_of_the_same_name() {
        let token = quota(vec![limit("requests", true)]);
        let owner = quota(vec![limit("requests", true), limit("daily", true)]);
        let plan = QuotaPlan::of(&token, &owner).unwrap();
        let planned: Vec<(&str, Scope)> = plan
            .limits
            .iter()
            .map(|p| (p.limit.name.as_str(), p.scope))
            .collect();
        assert_eq!(
            planned,
            [("daily", Scope::Owner), ("requests", Scope::Token)]
        );
        assert!(QuotaPlan::of(&Quota::default(), &Quota::default()).is_none());
    }

    #[test]
    fn usage_charges_auto_applied_limits_and_named_ones_at_their_cost() {
        let token = quota(vec![limit("requests", true), limit("exports", false)]);
        let plan = QuotaPlan::of(&token, &Quota::default()).unwrap();
        let costs = |usage: &Usage| -> Vec<(String, u64)> {
            plan.charges(usage)
                .unwrap()
                .iter()
                .map(|c| (c.planned.limit.name.to_string(), c.cost))
                .collect()
        };
        assert_eq!(costs(&Usage::default()), [("requests".into(), 1)]);
        let named = Usage::new(2, vec![(LimitName::parse("exports").unwrap(), 5)]).unwrap();
        assert_eq!(
            costs(&named),
            [("exports".into(), 5), ("requests".into(), 2)]
        );
        let unknown = Usage::new(1, vec![(LimitName::parse("nope").unwrap(), 1)]).unwrap();
        assert_eq!(plan.charges(&unknown).unwrap_err().index, 0);
        let twice = vec![
            (LimitName::parse("a").unwrap(), 1),
            (LimitName::parse("a").unwrap(), 1),
        ];
        assert!(Usage::new(1, twice).is_err());
    }
}
