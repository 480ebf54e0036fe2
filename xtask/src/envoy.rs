//! Envoy and echo-upstream processes for the demo and the benchmark: started, awaited, killed on
//! drop.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use suite_support::envoy_config;

use crate::{exec, http, workspace};

/// A child process killed (and reaped) on drop.
pub struct Process {
    pub name: String,
    child: Child,
    log: Option<PathBuf>,
}

impl Process {
    /// Its process id (the program's own: `taskset` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> Result<()> {
        let status = self.child.wait()?;
        println!("{} exited ({status})", self.name);
        Ok(())
    }

    /// The last `lines` lines of its log file, if it has one.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prefix `cmd` with `taskset -c <cpus>` when `cpus` is given. The child is also told to end
/// with xtask (see [`end_with_parent`]).
fn pinned(program: &Path, cpus: Option<&str>) -> Command {
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    end_with_parent(&mut cmd);
    cmd
}

/// Envoy and the upstreams get SIGTERM when xtask ends, however it ends. [`Process`] kills
/// them on drop, but a signal that ends xtask (`kill -INT <pid>`, `timeout`, a closed
/// terminal) runs no destructor, and they used to stay behind holding their ports. Linux
/// keeps this setting across `exec` (so through `taskset`); xtask starts them from its main
/// thread, whose end is what the kernel watches.
#[cfg(target_os = "linux")]
fn end_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only makes two async-signal-safe system
    // calls (prctl, getppid) and allocates nothing.
    let parent = std::process::id();
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // xtask ended before the setting took effect: end now rather than be orphaned.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn end_with_parent(_cmd: &mut Command) {}

/// Builds the echo upstream (release) and returns its path.
pub fn build_upstream() -> Result<PathBuf> {
    exec::run(exec::cargo().args(["build", "--release", "-p", "demo-upstream"]))?;
    let bin = workspace::metadata()?
        .target_dir
        .join("release")
        .join("demo-upstream");
    if !bin.is_file() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

/// Starts the upstream in bench mode (`--bench`: a fixed `200 {"ok":true}` to every request, no
/// echo) on `addr`, pinned to `cpus`, and waits until it answers.
pub fn start_bench_upstream(bin: &Path, addr: SocketAddr, cpus: Option<&str>) -> Result<Process> {
    start_service(
        "bench upstream",
        bin,
        &[
            "--bench".to_owned(),
            "--listen".to_owned(),
            addr.to_string(),
        ],
        &[(addr, "/__upstream/stats")],
        cpus,
    )
}

/// Starts `bin` with `args` (stdout discarded, stderr shown; pinned to `cpus` if given) and
/// waits until every `(addr, path)` of `ready` answers a GET with 200: the echo upstream, or the
/// demo's with its extra listeners.
pub fn start_service(
    name: &str,
    bin: &Path,
    args: &[String],
    ready: &[(SocketAddr, &str)],
    cpus: Option<&str>,
) -> Result<Process> {
    let child = pinned(bin, cpus)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut process = Process {
        name: name.into(),
        child,
        log: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    for (addr, path) in ready {
        loop {
            if matches!(http::request(*addr, "GET", path, &[], ""), Ok(r) if r.status == 200) {
                break;
            }
            if !process.running() || Instant::now() > deadline {
                bail!("{name} did not answer GET {path} on {addr} within 10s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(process)
}

/// Starts Envoy with `config` (cwd: the workspace root) and waits until admin `/ready` is LIVE.
pub fn start_envoy(
    bin: &Path,
    config: &Path,
    admin: SocketAddr,
    concurrency: u32,
    log: &Path,
    cpus: Option<&str>,
) -> Result<Process> {
    let _ = std::fs::remove_file(log);
    let child = pinned(bin, cpus)
        .arg("-c")
        .arg(config)
        .args(["--concurrency", &concurrency.to_string()])
        .arg("--disable-hot-restart")
        .arg("--log-path")
        .arg(log)
        .args(["--log-level", "info"])
        .current_dir(workspace::root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut process = Process {
        name: "envoy".into(),
        child,
        log: Some(log.to_path_buf()),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = http::request(admin, "GET", "/ready", &[], "") {
            if resp.status == 200 && resp.body.contains("LIVE") {
                return Ok(process);
            }
        }
        if !process.running() {
            bail!(
                "Envoy exited during startup; its log ({}):\n{}",
                log.display(),
                process.log_tail(40)
            );
        }
        if Instant::now() > deadline {
            bail!("Envoy was not ready within 60s; log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `port` on 127.0.0.1 can be bound right now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `127.0.0.1:<port>`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn socket(port: u16) -> Value {
    envoy_config::socket(local(port))
}

/// The `envoy.filters.http.wasm` entry for one plugin.
pub use suite_support::envoy_config::wasm_filter_json as wasm_filter;

/// A bootstrap like the test one: listener → HCM (`filters`, then router) → cluster `upstream`.
pub fn bootstrap(listener: u16, admin: u16, upstream: u16, filters: Vec<Value>) -> Value {
    let mut http_filters = filters;
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    json!({
        "admin": {"address": socket(admin)},
        "static_resources": {
            "listeners": [{
                "name": "listener_0",
                "address": socket(listener),
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
                                "routes": [{"name": "default", "match": {"prefix": "/"},
                                            "route": {"cluster": "upstream", "timeout": "30s"}}]
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
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(upstream)}}]}]
                }
            }]
        }
    })
}
