//! A real Envoy as a child process: config generated per test, admin and listener on free
//! ports of 127.0.0.1 (port 0, read back from the admin API), killed on drop, log printed when
//! the test fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::client;
use crate::paths::{self, ScratchDir};
use suite_support::envoy_config::socket;
pub use suite_support::envoy_config::wasm_filter_json;

/// How long Envoy may take to become ready (V8 compiles the plugins at startup).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One proxy-wasm filter in the chain.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    /// The plugin name: `dist/<plugin>.wasm`, and the filter's name and vm_id.
    pub plugin: String,
    /// The plugin configuration, passed as a JSON string.
    pub config: Value,
    /// The `.wasm` file; `None` means `dist/<plugin>.wasm`.
    pub wasm: Option<PathBuf>,
}

impl WasmFilter {
    pub fn new(plugin: &str, config: Value) -> WasmFilter {
        WasmFilter {
            plugin: plugin.into(),
            config,
            wasm: None,
        }
    }
}

/// What the generated Envoy config contains.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    /// The echo upstream, cluster `upstream`.
    pub upstream: SocketAddr,
    /// Wasm filters, in order, before the router.
    pub filters: Vec<WasmFilter>,
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
}

impl EnvoyConfig {
    /// Two workers, no filters.
    pub fn new(upstream: SocketAddr) -> EnvoyConfig {
        EnvoyConfig {
            upstream,
            filters: Vec::new(),
            concurrency: 2,
        }
    }

    /// Appends a wasm filter.
    pub fn filter(mut self, plugin: &str, config: Value) -> EnvoyConfig {
        self.filters.push(WasmFilter::new(plugin, config));
        self
    }

    /// The bootstrap, as JSON (Envoy reads `.json` configs).
    pub fn bootstrap(&self) -> Result<Value> {
        let mut http_filters = Vec::new();
        for f in &self.filters {
            let wasm = match &f.wasm {
                Some(p) => p.clone(),
                None => paths::plugin_wasm(&f.plugin)?,
            };
            http_filters.push(wasm_filter_json(&f.plugin, &f.config, &wasm));
        }
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }));
        Ok(json!({
            "admin": {"address": socket("127.0.0.1:0".parse()?)},
            "static_resources": {
                "listeners": [{
                    "name": "listener_0",
                    "address": socket("127.0.0.1:0".parse()?),
                    "filter_chains": [{"filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "ingress_http",
                            "codec_type": "AUTO",
                            "max_request_headers_kb": 96,
                            "route_config": {
                                "name": "local_route",
                                "virtual_hosts": [{
                                    "name": "all",
                                    "domains": ["*"],
                                    "routes": [{
                                        "name": "default",
                                        "match": {"prefix": "/"},
                                        "route": {"cluster": "upstream", "timeout": "30s"}
                                    }]
                                }]
                            },
                            "http_filters": http_filters
                        }
                    }]}]
                }],
                "clusters": [{
                    "name": "upstream",
                    "type": "STATIC",
                    "connect_timeout": "5s",
                    "load_assignment": {
                        "cluster_name": "upstream",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(self.upstream)}}]}]
                    }
                }]
            }
        }))
    }
}

/// A running Envoy.
pub struct Envoy {
    child: Child,
    dir: ScratchDir,
    admin: SocketAddr,
    listener: SocketAddr,
}

impl Envoy {
    /// Generates the config, starts Envoy and waits until `/ready` says LIVE and the listener is bound.
    /// On failure the error carries Envoy's log.
    pub fn start(config: &EnvoyConfig) -> Result<Envoy> {
        let bootstrap = config.bootstrap()?;
        Self::start_bootstrap(&bootstrap, config.concurrency)
    }

    /// Starts Envoy from a ready-made bootstrap (admin and listener may use port 0).
    pub fn start_bootstrap(bootstrap: &Value, concurrency: u32) -> Result<Envoy> {
        let bin = paths::envoy_bin()?;
        let dir = ScratchDir::new("suite-envoy")?;
        let config_path = dir.path().join("envoy.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(bootstrap)?)?;
        let admin_path = dir.path().join("admin-address");
        let output = std::fs::File::create(dir.path().join("stdout-stderr.log"))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--log-path")
            .arg(dir.path().join("envoy.log"))
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut envoy = Envoy {
            child,
            dir,
            admin: "127.0.0.1:0".parse()?,
            listener: "127.0.0.1:0".parse()?,
        };
        match envoy.wait_ready() {
            Ok(()) => Ok(envoy),
            Err(e) => {
                let _ = envoy.child.kill();
                let _ = envoy.child.wait();
                Err(e.context(format!("Envoy did not start; its log:\n{}", envoy.log())))
            }
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let admin_path = self.dir.path().join("admin-address");
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Envoy exited during startup ({status})");
            }
            if Instant::now() > deadline {
                bail!("Envoy was not ready within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
            let Ok(text) = std::fs::read_to_string(&admin_path) else {
                continue;
            };
            let Ok(admin) = text.trim().parse::<SocketAddr>() else {
                continue;
            };
            self.admin = admin;
            let Ok(ready) = client::get(admin, "/ready") else {
                continue;
            };
            if ready.status != 200 || !ready.text().contains("LIVE") {
                continue;
            }
            let listeners = client::get(admin, "/listeners?format=json")?;
            let listeners: Value = serde_json::from_slice(&listeners.body)
                .context("/listeners?format=json is not JSON")?;
            let sock = &listeners["listener_statuses"][0]["local_address"]["socket_address"];
            let port = sock["port_value"].as_u64().unwrap_or(0);
            if port == 0 {
                continue;
            }
            self.listener = SocketAddr::new("127.0.0.1".parse()?, u16::try_from(port)?);
            return Ok(());
        }
    }

    /// The HTTP listener (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.listener
    }

    /// The admin endpoint (127.0.0.1).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// GET on the admin API; the body as text.
    pub fn admin_get(&self, path: &str) -> Result<String> {
        let resp = client::get(self.admin, path)?;
        if resp.status != 200 {
            bail!("admin {path}: {} {}", resp.status, resp.text());
        }
        Ok(resp.text())
    }

    /// Counters and gauges from `/stats?format=json` (histograms left out).
    pub fn stats(&self) -> Result<BTreeMap<String, u64>> {
        let body = self.admin_get("/stats?format=json")?;
        let json: Value = serde_json::from_str(&body).context("/stats?format=json is not JSON")?;
        let stats = json["stats"]
            .as_array()
            .ok_or_else(|| anyhow!("/stats?format=json without `stats`"))?;
        Ok(stats
            .iter()
            .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["value"].as_u64()?)))
            .collect())
    }

    /// Connections each worker's listener accepted: `(stat name, count)` per worker, from the
    /// listener's `worker_N.downstream_cx_total` counters.
    pub fn worker_connections(&self) -> Result<Vec<(String, u64)>> {
        Ok(self
            .stats()?
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("listener.127.0.0.1_")
                    && k.ends_with(".downstream_cx_total")
                    && k.contains(".worker_")
            })
            .collect())
    }

    /// Envoy's log so far (its log file and anything it printed).
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let mut log = read("envoy.log");
        let printed = read("stdout-stderr.log");
        if !printed.trim().is_empty() {
            log.push_str("\n--- stdout/stderr ---\n");
            log.push_str(&printed);
        }
        log
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- Envoy log ({}) ----\n{}\n---- end of Envoy log ----",
                self.listener,
                self.log()
            );
        }
    }
}
