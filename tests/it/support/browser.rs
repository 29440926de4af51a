//! A real headless Chromium driven over WebDriver (Debian's `chromium` + `chromium-driver`,
//! through `fantoccini`), for the console's browser tests.
//!
//! `WAGATE_TEST_CHROMEDRIVER` names the `chromedriver` binary (`/usr/bin/chromedriver` on
//! Debian); without it the tests skip (see `tests/support/external.rs`). `WAGATE_TEST_CHROMIUM`
//! may name the browser binary when chromedriver does not find it by itself.

use super::external;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver process and one browser session in a fresh profile; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A phone-sized or laptop-sized window: `(width, height)` in CSS pixels.
    pub async fn start(window: (u32, u32)) -> Option<Browser> {
        let chromedriver = external::component(
            "WAGATE_TEST_CHROMEDRIVER",
            "headless Chromium with chromedriver (Debian: apt-get install chromium chromium-driver, \
             then WAGATE_TEST_CHROMEDRIVER=/usr/bin/chromedriver)",
        )?;
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={},{}", window.0, window.1),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.push("--force-device-scale-factor=1".into());
        let mut options = serde_json::json!({ "args": args });
        // Headless Chromium will not make a window narrower than about 500 px: a phone's
        // viewport comes from device emulation instead.
        if window.0 < 600 {
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": {"width": window.0, "height": window.1, "pixelRatio": 1.0}
            });
        }
        if let Ok(binary) = std::env::var("WAGATE_TEST_CHROMIUM") {
            options["binary"] = binary.into();
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("chromedriver at {url} gave no browser session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let text = self.body_text().await;
                panic!("no element {css} within 10 s ({e}) at {url:?}; the page shows:\n{text}")
            }
        }
    }

    /// Clicks the element `css` names. The live views re-render (a message arrives, a tick
    /// changes), which can replace the element between finding and clicking it: then it is
    /// found again, for up to 10 s.
    pub async fn click(&self, css: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.find(css).await.click().await {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing_note(css, &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot click {css} within 10 s: {e}"),
            }
        }
    }

    /// Waits up to 10 s until the page's visible text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.body_text().await;
            if text.contains(needle) {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("the page never showed {needle:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// Ends the session; the driver process ends on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A click that will be tried again, said on stderr (shown for a failing test only).
fn tracing_note(css: &str, e: &fantoccini::error::CmdError) {
    eprintln!("click on {css} refused ({e}); trying again");
}
