//! A TCP proxy we switch off and on, between the service and a real server: the outages of
//! the outage tests (MySQL) and of the shared-state tests (Redis) are real cut or silent
//! connections, not mocks.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

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
    silent: tokio::sync::watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let switch = Arc::new(Mutex::new(Switch::default()));
        let (silent, silence) = tokio::sync::watch::channel(false);
        let shared = switch.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut switch = shared.lock().expect("switch");
                switch.accepted += 1;
                if switch.down {
                    continue; // dropping `inbound` closes it
                }
                switch.live.retain(|forward| !forward.is_finished());
                switch
                    .live
                    .push(tokio::spawn(forward(inbound, target, silence.clone())));
            }
        });
        Self {
            port,
            switch,
            silent,
            accepting,
        }
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
/// that is restarted would: what was in flight is lost).
async fn forward(
    mut inbound: TcpStream,
    target: u16,
    mut silence: tokio::sync::watch::Receiver<bool>,
) {
    let silent_already = *silence.borrow();
    if !silent_already {
        let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
            _ = async { drop(silence.wait_for(|silent| *silent).await) } => {}
        }
    }
    drop(silence.wait_for(|silent| !*silent).await);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        if let Ok(switch) = self.switch.lock() {
            switch.live.iter().for_each(JoinHandle::abort);
        }
    }
}
