//! Real gateways in front of a tiny upstream, for the forward-auth tests (SPEC B13): Debian's
//! nginx and Caddy (installed by `scripts/services.sh`), each run with the configs shipped in
//! `deploy/` as they are, on ports of their own, stopped when dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// The repository's `deploy/` folder.
fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// A port nothing listens on (the gateway binds it a moment later).
fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The port of an app's address (`http://127.0.0.1:<port>`).
pub fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("an address with a port")
}

/// Answers every request with what it received: `{method, uri, headers}` (header names lower
/// case; a repeated header's values joined by `, `).
pub struct Upstream {
    pub port: u16,
    server: actix_web::dev::ServerHandle,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = HttpServer::new(|| App::new().default_service(web::to(echo)))
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            server: handle,
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

async fn echo(req: HttpRequest) -> HttpResponse {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|seen| {
                seen.push_str(", ");
                seen.push_str(&value);
            })
            .or_insert(value);
    }
    HttpResponse::Ok().json(json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
    }))
}

/// Which gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Caddy,
}

/// A running gateway: requests to `url(path)` go through it to the upstream.
pub struct Gateway {
    pub kind: Kind,
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl Gateway {
    /// `kind` with the shipped config, in front of `upstream`, asking the iam-tokens instances
    /// on `iam_ports` (nginx balances over them; Caddy asks the first).
    pub async fn start(kind: Kind, iam_ports: &[u16], upstream: &Upstream) -> Self {
        let dir = std::env::temp_dir().join(format!("iam-gateway-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let port = free_port();
        let child = match kind {
            Kind::Nginx => nginx(&dir, port, iam_ports, upstream.port),
            Kind::Caddy => caddy(&dir, port, iam_ports[0], upstream.port),
        };
        let gateway = Self {
            kind,
            port,
            child,
            dir,
        };
        gateway.wait_until_listening().await;
        gateway
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_until_listening(&self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        panic!("{:?} did not start on {}: {log}", self.kind, self.port);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary(name: &str) -> PathBuf {
    for folder in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = Path::new(folder).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is not installed: run scripts/services.sh (it installs Debian's {name})");
}

/// nginx in the foreground, its files in `dir`, with the shipped server and location
/// snippets included as they are.
fn nginx(dir: &Path, port: u16, iam_ports: &[u16], upstream: u16) -> Child {
    let temp = |name: &str| dir.join(name).display().to_string();
    let servers: String = iam_ports
        .iter()
        .map(|port| format!("server 127.0.0.1:{port};"))
        .collect();
    let config = format!(
        "daemon off;\n\
         user root;\n\
         worker_processes 1;\n\
         pid {pid};\n\
         error_log {log} warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {body}; proxy_temp_path {proxy};\n\
           fastcgi_temp_path {fastcgi}; uwsgi_temp_path {uwsgi}; scgi_temp_path {scgi};\n\
           upstream iam_tokens {{ {servers} keepalive 16; }}\n\
           upstream api {{ server 127.0.0.1:{upstream}; }}\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             include {server_snippet};\n\
             location / {{\n\
               include {protect_snippet};\n\
               proxy_pass http://api;\n\
             }}\n\
           }}\n\
         }}\n",
        pid = temp("nginx.pid"),
        log = temp("error.log"),
        body = temp("body"),
        proxy = temp("proxy"),
        fastcgi = temp("fastcgi"),
        uwsgi = temp("uwsgi"),
        scgi = temp("scgi"),
        server_snippet = deploy("nginx/iam-tokens-server.conf").display(),
        protect_snippet = deploy("nginx/iam-tokens-protect.conf").display(),
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).expect("write nginx.conf");
    Command::new(binary("nginx"))
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx")
}

/// Caddy with the shipped Caddyfile as it is, its addresses given by the environment it reads.
fn caddy(dir: &Path, port: u16, iam_port: u16, upstream: u16) -> Child {
    let log = std::fs::File::create(dir.join("error.log")).expect("log file");
    Command::new(binary("caddy"))
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(deploy("caddy/Caddyfile"))
        .env("XDG_DATA_HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("HOME", dir)
        .env("CADDY_ADMIN", "off")
        .env("SITE", format!("http://127.0.0.1:{port}"))
        .env("IAM_TOKENS", format!("127.0.0.1:{iam_port}"))
        .env("API", format!("127.0.0.1:{upstream}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start caddy")
}

/// A client whose requests leave from `from` (a loopback address other than 127.0.0.1, so that
/// the tests' clients are not the trusted proxy they sit next to).
pub fn client_from(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// What the client saw: status, headers (lower-case names), body as JSON (or a string).
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Seen {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// What the upstream received (a 200 through the gateway).
    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        self.body["headers"][name].as_str()
    }
}
