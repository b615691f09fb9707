//! Cache invalidation across instances: every committed change is published on one channel,
//! and every instance applies what the others published (SPEC B6).
//!
//! Messages are tiny text lines, `<instance>|<kind>[|<field>…]`, so that an instance skips its
//! own. A change made while Redis is down is kept (up to [`MAX_PENDING`]) and published once it
//! answers again; past that, one "drop everything" goes out instead. An instance whose
//! subscription was broken may have missed messages: each time it subscribes again it drops
//! its whole cache first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::connection::Redis;

/// Changes kept while Redis is down, to publish when it is back.
pub const MAX_PENDING: usize = 10_000;

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The token with this digest changed (revoked, rotated, updated, expired, its access
    /// changed): drop its cached record.
    Token([u8; 32]),
    /// A role changed: every cached record of a token holding roles is stale.
    Roles,
    /// The stored admin credential with this digest changed (revoked, its scopes or expiry
    /// changed): drop it from the credential cache (SPEC B9).
    Credential([u8; 32]),
    /// A key was banned by an abuse limiter.
    Banned { limiter: String, key: String },
    /// An operator lifted a ban.
    Lifted { limiter: String, key: String },
    /// A failed verification was counted for this consumption key (its first in the window on
    /// the sender): a success anywhere resets it.
    Failed { key: String },
    /// Changes were lost: drop everything cached.
    Everything,
}

/// Where an instance applies what it hears.
pub trait NoticeSink: Send + Sync {
    fn apply(&self, notice: Notice);
}

impl Notice {
    fn encode(&self, instance: &str) -> String {
        match self {
            Self::Token(digest) => format!("{instance}|t|{}", hex::encode(digest)),
            Self::Roles => format!("{instance}|r"),
            Self::Credential(digest) => format!("{instance}|c|{}", hex::encode(digest)),
            Self::Banned { limiter, key } => format!("{instance}|b|{limiter}|{key}"),
            Self::Lifted { limiter, key } => format!("{instance}|l|{limiter}|{key}"),
            Self::Failed { key } => format!("{instance}|f|{key}"),
            Self::Everything => format!("{instance}|e"),
        }
    }

    /// `(sender, notice)`; `None` for a message that is not ours to read.
    fn decode(text: &str) -> Option<(&str, Self)> {
        let (instance, rest) = text.split_once('|')?;
        if let Some(key) = rest.strip_prefix("f|") {
            let key = key.to_owned();
            return Some((instance, Self::Failed { key }));
        }
        let mut parts = rest.splitn(3, '|');
        let notice = match (parts.next()?, parts.next(), parts.next()) {
            ("t", Some(digest), None) => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(digest, &mut bytes).ok()?;
                Self::Token(bytes)
            }
            ("c", Some(digest), None) => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(digest, &mut bytes).ok()?;
                Self::Credential(bytes)
            }
            ("r", None, None) => Self::Roles,
            ("e", None, None) => Self::Everything,
            ("b", Some(limiter), Some(key)) => Self::Banned {
                limiter: limiter.to_owned(),
                key: key.to_owned(),
            },
            ("l", Some(limiter), Some(key)) => Self::Lifted {
                limiter: limiter.to_owned(),
                key: key.to_owned(),
            },
            _ => return None,
        };
        Some((instance, notice))
    }
}

#[derive(Default)]
struct Pending {
    notices: VecDeque<Notice>,
    overflowed: bool,
}

/// This instance's side of the channel: publish, and listen (see [`Notices::maintain`]).
pub struct Notices {
    redis: Arc<Redis>,
    channel: String,
    /// Random per process: tells our own messages apart.
    instance: String,
    outbox: mpsc::UnboundedSender<Notice>,
    /// Published and not yet sent (or kept): see [`Notices::drained`].
    in_flight: AtomicUsize,
    pending: Mutex<Pending>,
}

impl Notices {
    /// The channel of this deployment, and the task that publishes in order (on the current
    /// runtime; it ends when the last `Notices` is dropped).
    pub fn start(redis: Arc<Redis>) -> Arc<Self> {
        let (outbox, mut queue) = mpsc::unbounded_channel();
        let notices = Arc::new(Self {
            channel: redis.key(format_args!("invalidations")),
            redis,
            instance: format!("{:016x}", rand::random::<u64>()),
            outbox,
            in_flight: AtomicUsize::new(0),
            pending: Mutex::default(),
        });
        let publisher = Arc::downgrade(&notices);
        tokio::spawn(async move {
            while let Some(notice) = queue.recv().await {
                let Some(notices) = publisher.upgrade() else {
                    return;
                };
                notices.send(notice).await;
                notices.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        });
        notices
    }

    /// Tells every other instance, after the change has committed; never waits.
    pub fn publish(&self, notice: Notice) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.outbox.send(notice).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Waits until every notice published so far was sent (or kept for later), for at most
    /// `within`: a process about to exit (the CLI, a shutdown) calls it last.
    pub async fn drained(&self, within: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.in_flight.load(Ordering::Acquire) > 0 && started.elapsed() < within {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    pub fn redis(&self) -> &Arc<Redis> {
        &self.redis
    }

    async fn send(&self, notice: Notice) {
        if self.redis.is_up() {
            let message = notice.encode(&self.instance);
            let publish = redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(message)
                .clone();
            if self.redis.query::<i64>("publish", &publish).await.is_ok() {
                return;
            }
        }
        self.keep(notice);
    }

    fn keep(&self, notice: Notice) {
        if matches!(notice, Notice::Failed { .. }) {
            return; // advisory: not worth a dropped cache when the queue overflows
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.notices.len() < MAX_PENDING {
            pending.notices.push_back(notice);
        } else {
            pending.notices.clear();
            pending.overflowed = true;
        }
    }

    /// Publishes what could not be published while Redis was down.
    fn resend_pending(&self) {
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending)
        };
        if pending.overflowed {
            self.publish(Notice::Everything);
        }
        for notice in pending.notices {
            self.publish(notice);
        }
    }

    /// Keeps the subscription up for as long as the application runs: subscribes, drops
    /// everything `sink` cached (messages may have been missed before), marks Redis up and
    /// applies what arrives; when Redis fails or goes silent, marks it down and tries again
    /// every `redis.check_interval`. `first_try` is told once the first attempt ended.
    pub async fn maintain(
        self: Arc<Self>,
        sink: Arc<dyn NoticeSink>,
        first_try: tokio::sync::oneshot::Sender<()>,
    ) {
        let mut first_try = Some(first_try);
        loop {
            if let Some(subscription) = self.subscribe().await {
                sink.apply(Notice::Everything);
                self.redis.health().recovered();
                if let Some(told) = first_try.take() {
                    let _ = told.send(());
                }
                self.resend_pending();
                self.listen(subscription, &*sink).await;
                self.redis.health().metrics().resubscriptions.increment(1);
            }
            if let Some(told) = first_try.take() {
                let _ = told.send(());
            }
            tokio::time::sleep(self.redis.check_interval()).await;
        }
    }

    async fn subscribe(&self) -> Option<redis::aio::PubSub> {
        self.redis.probe().await.ok()?;
        let attempt = async {
            let client = redis::Client::open(self.redis.subscription_url())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(self.redis.connect_timeout(), attempt).await {
            Ok(Ok(pubsub)) => Some(pubsub),
            Ok(Err(err)) => {
                self.redis.health().lost("subscribe", &err);
                None
            }
            Err(_) => {
                self.redis.health().lost("subscribe", &"timed out");
                None
            }
        }
    }

    /// Applies messages until the subscription ends or fails a ping. Every `check_interval`
    /// it also probes the command connections: a call that failed while the subscription
    /// stayed up marked Redis down, and a probe that answers marks it up again — with no
    /// cache dropped, since no message was missed.
    async fn listen(&self, subscription: redis::aio::PubSub, sink: &dyn NoticeSink) {
        let (mut control, mut messages) = subscription.split();
        let mut tick = tokio::time::interval(self.redis.check_interval());
        tick.reset();
        let health = self.redis.health();
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        health.lost("subscription", &"closed");
                        return;
                    };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    match Notice::decode(&text) {
                        Some((from, notice)) if from != self.instance => {
                            health.metrics().notices_received.increment(1);
                            sink.apply(notice);
                        }
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    let ping = control.ping::<redis::Value>();
                    let answered = tokio::time::timeout(self.redis.connect_timeout(), ping).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        health.lost("subscription ping", &"no answer");
                        return;
                    }
                    let was_up = health.is_up();
                    if self.redis.probe().await.is_ok() && !was_up {
                        health.recovered();
                        self.resend_pending();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_reads_back_as_sent_and_foreign_text_is_ignored() {
        let notices = [
            Notice::Token([7; 32]),
            Notice::Roles,
            Notice::Credential([9; 32]),
            Notice::Everything,
            Notice::Banned {
                limiter: "burst_limiter".into(),
                key: "203.0.113.9_list-metadata".into(),
            },
            Notice::Lifted {
                limiter: "consumption_rate_limiter".into(),
                key: "key:0a|b".into(),
            },
            Notice::Failed {
                key: "key:00ff00ff00ff00ff".into(),
            },
            Notice::Failed {
                key: "2001:db8::1".into(),
            },
        ];
        for notice in notices {
            let text = notice.encode("abc");
            assert_eq!(Notice::decode(&text), Some(("abc", notice)), "{text}");
        }
        for foreign in [
            "",
            "abc",
            "abc|t|zz",
            "abc|t",
            "abc|x",
            "abc|r|extra",
            "abc|b|only",
        ] {
            assert_eq!(Notice::decode(foreign), None, "{foreign}");
        }
    }
}
