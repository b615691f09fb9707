//! A TCP proxy we switch off and on, between the service and a real server: the outages of
//! the outage tests (MySQL) and of the shared-state tests (Redis) are real cut or silent
//! connections, not mocks; the slow answers of the breaker tests are real answers held back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Which answers (chunks read from the server, in order over all connections) are held back,
/// and for how long. A held answer also holds every later one of its connection, as TCP does.
/// With a `needle`, only requests containing it are counted, and the answer held is the next
/// one on that request's connection (so that background pings and subscriptions pass).
#[derive(Default)]
struct Delays {
    needle: Option<Vec<u8>>,
    /// Answers to hold from now on, whatever the share.
    next: usize,
    /// Percent of answers held (spread evenly: the 10th, 20th… for 10 %).
    percent: u64,
    by: Duration,
    /// Answers read so far (numbers the answers for `percent`).
    seen: u64,
    /// Answers held so far.
    held: usize,
    /// Request chunks forwarded (a MySQL client sends one command per round trip, in one
    /// write: the round trips made through the proxy).
    requests: usize,
}

impl Delays {
    /// How long the answer read now is held (zero: not).
    fn hold(&mut self) -> Duration {
        self.seen += 1;
        let share = self.seen * self.percent / 100 > (self.seen - 1) * self.percent / 100;
        if self.next > 0 || share {
            self.next = self.next.saturating_sub(1);
            self.held += 1;
            return self.by;
        }
        Duration::ZERO
    }
}

#[derive(Default)]
struct Switch {
    down: bool,
    /// Forwarded connections alive right now.
    live: Vec<JoinHandle<()>>,
    /// Connections accepted since the proxy started.
    accepted: usize,
}

/// A TCP proxy to a local server (MySQL, Redis) with three states, as a database host has: up (forwards),
/// down (cuts every forwarded connection and closes each new one at once, as a dead host
/// would) and silent (accepts and holds every connection, old and new, and forwards nothing,
/// as a hung host or a black-holed network does).
pub struct Proxy {
    pub port: u16,
    switch: Arc<Mutex<Switch>>,
    delays: Arc<Mutex<Delays>>,
    silent: tokio::sync::watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let switch = Arc::new(Mutex::new(Switch::default()));
        let delays = Arc::new(Mutex::new(Delays::default()));
        let (silent, silence) = tokio::sync::watch::channel(false);
        let shared = switch.clone();
        let held = delays.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut switch = shared.lock().expect("switch");
                switch.accepted += 1;
                if switch.down {
                    continue; // dropping `inbound` closes it
                }
                switch.live.retain(|forward| !forward.is_finished());
                let forwarding = forward(inbound, target, silence.clone(), held.clone());
                switch.live.push(tokio::spawn(forwarding));
            }
        });
        Self {
            port,
            switch,
            delays,
            silent,
            accepting,
        }
    }

    /// From now on only answers to requests containing `needle` are held (e.g. `EVALSHA`).
    pub fn only_answers_to(&self, needle: &[u8]) {
        self.delays.lock().expect("delays").needle = Some(needle.to_vec());
    }

    /// Holds the next `answers` answers from the server for `by` each.
    pub fn delay_next(&self, answers: usize, by: Duration) {
        let mut delays = self.delays.lock().expect("delays");
        delays.next = answers;
        delays.by = by;
    }

    /// Holds `percent` % of the answers from now on, evenly spread, for `by` each (0 stops).
    pub fn delay_share(&self, percent: u64, by: Duration) {
        let mut delays = self.delays.lock().expect("delays");
        delays.percent = percent;
        delays.by = by;
    }

    /// Requests forwarded so far (round trips, for a client that sends one command at a time).
    pub fn requests(&self) -> usize {
        self.delays.lock().expect("delays").requests
    }

    /// Answers held so far.
    pub fn held(&self) -> usize {
        self.delays.lock().expect("delays").held
    }

    /// Cuts every live connection (and waits until they are closed); refuses new ones.
    pub async fn down(&self) {
        let live = {
            let mut switch = self.switch.lock().expect("switch");
            switch.down = true;
            std::mem::take(&mut switch.live)
        };
        for forward in live {
            forward.abort();
            let _ = forward.await;
        }
    }

    /// Holds every connection open and forwards nothing, old connections and new alike, until
    /// `up` closes them.
    pub fn silent(&self) {
        self.silent.send_replace(true);
    }

    pub fn up(&self) {
        self.switch.lock().expect("switch").down = false;
        self.silent.send_replace(false);
    }

    pub fn accepted(&self) -> usize {
        self.switch.lock().expect("switch").accepted
    }
}

/// Forwards one connection until either side closes, or — once the proxy is silent — holds it
/// open forwarding nothing until the silence ends, then closes it (as a hung database host
/// that is restarted would: what was in flight is lost). Answers are held back as `delays`
/// says; requests always go through at once.
async fn forward(
    mut inbound: TcpStream,
    target: u16,
    mut silence: tokio::sync::watch::Receiver<bool>,
    delays: Arc<Mutex<Delays>>,
) {
    let silent_already = *silence.borrow();
    if !silent_already {
        let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
            return;
        };
        let (mut from_client, mut to_client) = inbound.split();
        let (mut from_server, mut to_server) = outbound.split();
        let marked = std::sync::atomic::AtomicU64::new(0);
        tokio::select! {
            _ = requests(&mut from_client, &mut to_server, &delays, &marked) => return,
            _ = answers(&mut from_server, &mut to_client, &delays, &marked) => return,
            _ = async { drop(silence.wait_for(|silent| *silent).await) } => {}
        }
    }
    drop(silence.wait_for(|silent| !*silent).await);
}

/// Copies the client's requests to the server; with a needle, a request containing it may mark
/// its connection's next answer to be held (`marked`, in ms).
async fn requests(
    from_client: &mut (impl tokio::io::AsyncRead + Unpin),
    to_server: &mut (impl tokio::io::AsyncWrite + Unpin),
    delays: &Mutex<Delays>,
    marked: &std::sync::atomic::AtomicU64,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from_client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        {
            let mut delays = delays.lock().expect("delays");
            delays.requests += 1;
            let needle = delays.needle.clone();
            if let Some(needle) = needle {
                if chunk.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    let hold = delays.hold();
                    if !hold.is_zero() {
                        let ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
                        marked.store(ms, std::sync::atomic::Ordering::Release);
                    }
                }
            }
        }
        if to_server.write_all(chunk).await.is_err() {
            return;
        }
    }
}

/// Copies the server's answers to the client, each chunk read held as `delays` says.
async fn answers(
    from_server: &mut (impl tokio::io::AsyncRead + Unpin),
    to_client: &mut (impl tokio::io::AsyncWrite + Unpin),
    delays: &Mutex<Delays>,
    marked: &std::sync::atomic::AtomicU64,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from_server.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let hold = {
            let mut delays = delays.lock().expect("delays");
            match delays.needle {
                None => delays.hold(),
                Some(_) => {
                    let ms = marked.swap(0, std::sync::atomic::Ordering::AcqRel);
                    Duration::from_millis(ms)
                }
            }
        };
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        if to_client.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        if let Ok(switch) = self.switch.lock() {
            switch.live.iter().for_each(JoinHandle::abort);
        }
    }
}
