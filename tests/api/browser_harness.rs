//! A real browser for the console's tests (SPEC B14): Debian's headless Chromium, driven over
//! WebDriver through its chromedriver (both installed by `scripts/services.sh`). Each
//! `Browser` runs a chromedriver of its own on a free port, in a process group of its own and
//! with a temporary folder of its own, so that dropping it (even on a panic) ends chromedriver
//! and every Chromium process it started and removes their profiles.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The window every test sees (and every screenshot has).
const WINDOW: &str = "--window-size=1280,900";

/// A port nothing listens on (chromedriver binds it a moment later).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Where screenshots go.
fn screenshots() -> PathBuf {
    // Every run writes them under target/; `IAM_UPDATE_SCREENSHOTS=1` writes the committed ones
    // in docs/console/ (so that a test run leaves the work tree as it was).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("IAM_UPDATE_SCREENSHOTS") {
        Some(_) => root.join("docs").join("console"),
        None => root.join("target").join("console-screenshots"),
    }
}

/// Headless Chromium, as the console's tests run it.
fn capabilities() -> serde_json::Map<String, Value> {
    let options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            WINDOW,
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    // What the page's console says (CSP violations, script errors, failed loads).
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    capabilities
}

/// A chromedriver child with its Chromium: killed, process group and all, when dropped.
struct Driver {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Driver {
    async fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: run scripts/services.sh (it installs Debian's chromium \
                 and chromium-driver)"
            );
        }
        let dir = std::env::temp_dir().join(format!("iam-browser-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("log file");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Chromium's profile and scratch files land here, removed on drop.
            .env("TMPDIR", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            // Its own process group: Chromium's processes join it, and all end together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("{CHROMEDRIVER} did not start ({err}): run scripts/services.sh")
            });
        let driver = Self { child, port, dir };
        driver.wait_until_listening().await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default()
    }

    async fn wait_until_listening(&self) {
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "chromedriver did not listen on {} within 10 s: {}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A headless Chromium driven over WebDriver.
pub struct Browser {
    pub client: Client,
    driver: Driver,
}

impl Browser {
    /// A chromedriver of its own and a fresh Chromium session (no cookies).
    pub async fn start() -> Self {
        let driver = Driver::start().await;
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities());
        let client = match builder.connect(&driver.url()).await {
            Ok(client) => client,
            Err(err) => panic!(
                "Chromium did not start through chromedriver ({err}); is {CHROMIUM} \
                 installed (run scripts/services.sh)? chromedriver said: {}",
                driver.log()
            ),
        };
        Self { client, driver }
    }

    /// Loads `url` and waits for the page (as a typed address would).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("goto {url}: {err}"));
    }

    /// The address the browser shows now.
    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// The path (and query) the browser shows now.
    pub async fn path(&self) -> String {
        let url = self.current_url().await;
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The element `css` selects, waiting up to 5 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(err) => panic!("no element {css} ({err}) on {}", self.describe().await),
        }
    }

    /// Whether something matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    /// Types `text` into the field with id `id` (cleared first).
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.find(&format!("#{id}")).await;
        field.clear().await.expect("clear");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("typing into #{id}: {err}"));
    }

    /// Clicks what `css` selects (a button, a link).
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Clicks what `css` selects and waits until the browser has left the page it was on.
    pub async fn click_and_wait(&self, css: &str) {
        let before = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("the page");
        self.click(css).await;
        for _ in 0..200 {
            // The old document's element goes stale once the next page is there.
            if before.tag_name().await.is_err() {
                self.wait_ready().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} left {} in place", self.path().await);
    }

    /// Waits until the document has loaded.
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await;
            if matches!(state, Ok(Value::String(ref s)) if s == "complete") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the page did not finish loading: {}", self.path().await);
    }

    /// The rendered text of what `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// An attribute of what `css` selects.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.expect("attribute")
    }

    /// Runs `script` in the page (`return` gives a value).
    pub async fn execute(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// The warnings and errors the browser's console has logged since the last call (a CSP
    /// violation, a script error, a resource that failed to load), as `LEVEL message`.
    pub async fn console_problems(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("the browser's log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| matches!(entry["level"].as_str(), Some("WARNING" | "SEVERE")))
            .map(|entry| {
                let level = entry["level"].as_str().unwrap_or_default();
                let message = entry["message"].as_str().unwrap_or_default();
                format!("{level} {message}")
            })
            .collect()
    }

    /// Saves the window as `<name>.png` (see `screenshots`).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).expect("docs/console");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    /// Where the browser is and what the page says, for failure messages.
    pub async fn describe(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|url| url.to_string())
            .unwrap_or_default();
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        format!("{url}\n---\n{text}\n---")
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let Self { client, driver } = self;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        drop(driver);
    }
}

/// chromedriver's log of the browser's console (`goog:loggingPrefs` turns it on); each call
/// returns what came since the last one.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A site of its own on a free port of 127.0.0.1 that serves one HTML page at `/` (an attacker's
/// page, say: another origin than the app's, but the same site); stopped when dropped.
pub struct Site {
    pub port: u16,
    server: actix_web::dev::ServerHandle,
}

impl Site {
    pub async fn serve(html: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let html = web::Data::new(html);
        let server = HttpServer::new(move || {
            App::new().app_data(html.clone()).default_service(web::to(
                |html: web::Data<String>| async move {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(html.get_ref().clone())
                },
            ))
        })
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

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}
