//! CORS as a browser sees it: headless Chromium loads a page from one loopback origin that
//! `fetch`es the local API with an `x-api-key` header (so the browser sends a preflight first).
//! The environment allows one origin; the real `health` function behind the server decides.
//!
//! From the allowed origin the preflight (keyless `OPTIONS`, routed to the function) passes and
//! the page reads the JSON and the `x-request-id` header; from another origin the preflight is
//! refused and `fetch` rejects with a `TypeError`, as browsers report CORS failures.
//!
//! Needs Chromium (or Chrome) on PATH, or its path in `CHROMIUM` (`apt-get install chromium`;
//! `.ci/run` installs it); the test fails, never skips, without.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use deploy_files::Outputs;
use local_api::{Options, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "browser-api-key-0123456789";

/// The browser (`$CHROMIUM`, else the first Chromium or Chrome on PATH), or a failure that
/// says how to get it.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "chromium is not on PATH: this test drives a real browser. Install it \
         (Debian: `apt-get install -y --no-install-recommends chromium`; `.ci/run` does this)"
    );
}

/// The page: fetch the API with the key, write the outcome into `#out`.
fn page(api: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>cors</title></head>
<body><pre id="out">pending</pre>
<script>
const out = document.getElementById("out");
fetch({api:?}, {{ headers: {{ "x-api-key": {KEY:?} }} }})
  .then(async (r) => {{
    const body = await r.json();
    out.textContent = "OK " + JSON.stringify({{ status: r.status, requestId: r.headers.get("x-request-id"), body }});
  }})
  .catch((e) => {{ out.textContent = "FAILED " + e.name + ": " + e.message; }});
</script></body></html>
"#
    )
}

/// A static server answering every request on `listener` with `html`.
fn serve_page(listener: TcpListener, html: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

/// Loads `url` in headless Chromium and returns the text of `#out` once the fetch settled.
async fn run_page(browser: &Path, profile: &Path, url: &str) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                // Virtual time stops while the fetch is in flight, so the DOM is dumped after
                // it settled, however long the function's cold start takes.
                "--virtual-time-budget=15000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--dump-dom", url])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("chromium did not finish loading {url} within 90 s"))
    .expect("running chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}\n{dom}",
        String::from_utf8_lossy(&output.stderr)
    );
    let start = dom
        .find(r#"<pre id="out">"#)
        .unwrap_or_else(|| panic!("no #out in the DOM of {url}:\n{dom}"))
        + r#"<pre id="out">"#.len();
    let end = dom[start..].find("</pre>").expect("closed #out") + start;
    dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_may_call_from_an_allowed_origin_only() {
    let browser = chromium();
    let dir = support::scratch("browser");
    let dist = dir.join("dist");
    let health = support::function_binary("health");
    let echo = support::example("echo_lambda");
    support::zip_bootstrap(&dist, "health", &health);
    support::zip_bootstrap(&dist, "users", &echo);
    support::zip_bootstrap(&dist, "sessions", &echo);
    for f in catalog::FUNCTIONS.iter().filter(|f| f.routes.is_empty()) {
        // No route reaches them, but the server follows every function's alias.
        support::zip_bootstrap(&dist, f.name, &echo);
    }
    let outputs = dir.join("outputs.json");
    Outputs::fixture("browser-", "test", KEY)
        .write(&outputs)
        .unwrap();

    // Two page servers: two origins, of which the environment allows the first.
    let allowed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_origin = format!("http://127.0.0.1:{}", allowed.local_addr().unwrap().port());
    let other_origin = format!("http://127.0.0.1:{}", other.local_addr().unwrap().port());

    let mut options = Options::new(outputs, dist, support::closed_endpoint());
    options.work_dir = Some(dir.join("work"));
    // Keyed, so the key the page sends is really needed and the preflight really keyless.
    options.health_requires_api_key = Some(true);
    options.cors_allow_origins = Some(vec![allowed_origin.clone()]);
    let server = Server::start(options).await.expect("the server starts");
    let api = format!("{}/health", server.url());
    let pages = [
        serve_page(allowed, page(&api)),
        serve_page(other, page(&api)),
    ];

    // The preflight as the browser sends it: no key, routed to the function, which answers.
    let http = reqwest::Client::new();
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, &api)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-api-key")
            .send()
    };
    let response = preflight(&allowed_origin).await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        allowed_origin.as_str()
    );
    let response = preflight(&other_origin).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");

    let profile = dir.join("chromium-allowed");
    let outcome = run_page(&browser, &profile, &format!("{allowed_origin}/page.html")).await;
    let json = outcome
        .strip_prefix("OK ")
        .unwrap_or_else(|| panic!("the fetch from the allowed origin failed: {outcome}"));
    let result: Value = serde_json::from_str(json).unwrap();
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"]["status"], "ok", "{result}");
    let request_id = result["requestId"].as_str().unwrap_or_default();
    assert!(
        !request_id.is_empty(),
        "the page could not read x-request-id: {result}"
    );

    let profile = dir.join("chromium-other");
    let outcome = run_page(&browser, &profile, &format!("{other_origin}/page.html")).await;
    assert!(
        outcome.starts_with("FAILED TypeError"),
        "a fetch from an origin that is not allowed must fail as a CORS error: {outcome}"
    );

    for page in pages {
        page.abort();
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
