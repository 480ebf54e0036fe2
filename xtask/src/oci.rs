//! `cargo xtask dist --oci`: an OCI image layout per plugin in the Wasm image format Istio's agent
//! pulls, and an Istio `WasmPlugin` manifest per plugin whose `sha256` is what Istio checks.
//!
//! Image format: the *oci* variant of the Wasm image spec, in the shape Istio's
//! `pkg/wasm/imagefetcher.go` accepts (`extractOCIArtifactImage`): exactly two layers, one of
//! media type `application/vnd.module.wasm.content.layer.v1+wasm` holding the module byte for
//! byte, one `application/vnd.module.wasm.config.v1+json` holding the runtime config; the
//! manifest's config is that same runtime config. No tar, no gzip, no timestamps: the same
//! `.wasm` always gives the same digests.
//!
//! `sha256` in a `WasmPlugin`: for `oci://` urls Istio compares it with the digest of the image
//! *manifest* it pulled (`img.Digest()`), for `http(s)://` urls with the sha256 of the downloaded
//! module (`pkg/wasm/cache.go`). So the manifests written here carry the manifest digest, and name
//! the module's own sha256 (the `SHA256SUMS` line) in a comment for the https form.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::workspace;

/// Media type of the layer that is the Wasm module itself.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Media type of the runtime config (manifest config, and the second layer Istio requires).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type (`index.json` of a layout).
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation `skopeo`/`oras` read as the tag of a manifest in an OCI layout.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The image tag and the version in the Istio urls: the workspace version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Placeholder for the registry in generated `WasmPlugin` urls.
pub const REGISTRY_PLACEHOLDER: &str = "REGISTRY";

/// Where each plugin sits in an Istio filter chain, and what happens when it cannot run.
///
/// Order matches the README: header-injection, jwt-rbac, audit-log, ratelimit-shared-data,
/// circuit-breaker. Istio orders `AUTHN` < `AUTHZ` < `STATS` < router, and within a phase the
/// higher `priority` runs first (WasmPlugin API: "Higher priority is evaluated first").
#[derive(Debug, Clone, Copy)]
pub struct IstioPlacement {
    pub plugin: &'static str,
    pub phase: &'static str,
    pub priority: i64,
    pub fail_strategy: &'static str,
    /// One line for the generated manifest: why this phase and fail strategy.
    pub why: &'static str,
}

/// Every plugin, in chain order.
pub const ISTIO_CHAIN: [IstioPlacement; 5] = [
    IstioPlacement {
        plugin: "header-injection",
        phase: "AUTHN",
        priority: 100,
        fail_strategy: "FAIL_CLOSE",
        why: "first: answers CORS preflights, sets correlation/trace ids and strips spoofed identity \
              headers before jwt-rbac; FAIL_CLOSE because without it client-sent x-user-id reaches \
              the service",
    },
    IstioPlacement {
        plugin: "jwt-rbac",
        phase: "AUTHN",
        priority: 10,
        fail_strategy: "FAIL_CLOSE",
        why: "after header-injection (priority 100) in AUTHN; FAIL_CLOSE because an authentication \
              filter that cannot run must refuse requests, not let them through",
    },
    IstioPlacement {
        plugin: "audit-log",
        phase: "AUTHZ",
        priority: 100,
        fail_strategy: "FAIL_OPEN",
        why: "after jwt-rbac (AUTHN), so the verified identity is in the record; before \
              ratelimit-shared-data (AUTHZ 50) and circuit-breaker (STATS): Envoy runs response \
              callbacks in reverse order, so it sees the response after those two acted on it and \
              records their real decisions (it writes after the response); FAIL_OPEN: serving \
              without audit records is preferred to an outage (FAIL_CLOSE if your policy says no \
              request without a record)",
    },
    IstioPlacement {
        plugin: "ratelimit-shared-data",
        phase: "AUTHZ",
        priority: 50,
        fail_strategy: "FAIL_OPEN",
        why: "after authentication, so identity headers are verified, and after audit-log \
              (AUTHZ 100); FAIL_OPEN: a broken limiter should not take the API down (make it \
              FAIL_CLOSE if limits protect a fragile backend)",
    },
    IstioPlacement {
        plugin: "circuit-breaker",
        phase: "STATS",
        priority: 10,
        fail_strategy: "FAIL_OPEN",
        why: "last, nearest the router, so refused requests never count as upstream failures; \
              FAIL_OPEN: without the breaker requests simply reach the upstream",
    },
];

/// gateway-suite's place: instead of the chain, not beside it.
pub const ISTIO_SUITE: IstioPlacement = IstioPlacement {
    plugin: "gateway-suite",
    phase: "AUTHN",
    priority: 100,
    fail_strategy: "FAIL_CLOSE",
    why: "one filter doing the five plugins' jobs in the chain's order: apply it instead of \
          their five WasmPlugins, never beside them, in the first one's place; FAIL_CLOSE \
          because it authenticates and strips forged identity headers",
};

/// Every module with a `WasmPlugin`: the chain, then the suite.
pub fn istio_modules() -> impl Iterator<Item = &'static IstioPlacement> {
    ISTIO_CHAIN.iter().chain(std::iter::once(&ISTIO_SUITE))
}

/// The placement of `plugin`, if it is one of ours.
pub fn placement(plugin: &str) -> Option<&'static IstioPlacement> {
    istio_modules().find(|p| p.plugin == plugin)
}

/// A content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Vec<u8>,
    /// Lowercase hex sha256 of `bytes`.
    pub sha256: String,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Self {
        let sha256 = sha256_hex(&bytes);
        Self { bytes, sha256 }
    }

    fn descriptor(&self, media_type: &str, annotations: Option<Value>) -> Value {
        let mut d = json!({
            "mediaType": media_type,
            "digest": format!("sha256:{}", self.sha256),
            "size": self.bytes.len(),
        });
        if let (Some(a), Some(map)) = (annotations, d.as_object_mut()) {
            map.insert("annotations".into(), a);
        }
        d
    }
}

/// One plugin packed as a Wasm OCI image: the blobs of its layout and its `index.json`.
#[derive(Debug, Clone)]
pub struct WasmImage {
    pub wasm: Blob,
    pub runtime_config: Blob,
    pub manifest: Blob,
    /// `index.json`: one manifest, tagged `tag` through `org.opencontainers.image.ref.name`.
    pub index: Vec<u8>,
}

impl WasmImage {
    /// Packs `wasm` (the bytes of `dist/<plugin>.wasm`) as `<plugin>:<tag>`.
    pub fn build(plugin: &str, tag: &str, wasm: &[u8]) -> Result<Self> {
        if !wasm.starts_with(b"\0asm") {
            bail!("{plugin}: not a Wasm module (no \\0asm header)");
        }
        let wasm = Blob::new(wasm.to_vec());
        // The runtime config of the Wasm image spec (type, ABI versions, root ids).
        let runtime_config = Blob::new(serde_json::to_vec(&json!({
            "type": "envoy_proxy",
            "abiVersions": ["v0.2.1"],
            "config": {"root_ids": [plugin]},
        }))?);
        let manifest = Blob::new(serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": runtime_config.descriptor(WASM_CONFIG_MEDIA_TYPE, None),
            "layers": [
                wasm.descriptor(
                    WASM_LAYER_MEDIA_TYPE,
                    Some(json!({"org.opencontainers.image.title": "plugin.wasm"})),
                ),
                runtime_config.descriptor(
                    WASM_CONFIG_MEDIA_TYPE,
                    Some(json!({"org.opencontainers.image.title": "runtime-config.json"})),
                ),
            ],
            "annotations": {
                "org.opencontainers.image.title": plugin,
                "org.opencontainers.image.version": tag,
                "org.opencontainers.image.description":
                    format!("{plugin}: proxy-wasm HTTP filter (ABI 0.2.1), wasm32-wasip1"),
            },
        }))?);
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX_MEDIA_TYPE,
            "manifests": [manifest.descriptor(
                OCI_MANIFEST_MEDIA_TYPE,
                Some(json!({ REF_NAME_ANNOTATION: tag })),
            )],
        }))?;
        Ok(Self {
            wasm,
            runtime_config,
            manifest,
            index,
        })
    }

    /// The digest Istio compares with `sha256` for an `oci://` url: the manifest's, hex.
    pub fn istio_oci_sha256(&self) -> &str {
        &self.manifest.sha256
    }

    /// Writes the OCI image layout into `dir` (replaced if it exists).
    pub fn write_layout(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)
            .with_context(|| format!("cannot create {}", blobs.display()))?;
        write(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        write(&dir.join("index.json"), &self.index)?;
        for blob in [&self.wasm, &self.runtime_config, &self.manifest] {
            write(&blobs.join(&blob.sha256), &blob.bytes)?;
        }
        Ok(())
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `istio/` at the workspace root: example configs and the checked-in manifests.
pub fn istio_dir() -> PathBuf {
    workspace::root().join("istio")
}

/// The checked-in example `pluginConfig` of `plugin` (`istio/config/<plugin>.json`).
pub fn example_config(plugin: &str) -> Result<Value> {
    let path = istio_dir().join("config").join(format!("{plugin}.json"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// What the `sha256` of a manifest is, when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Pinned<'a> {
    /// Digest of the image manifest (what Istio checks for `oci://`).
    pub manifest_sha256: &'a str,
    /// sha256 of the module itself (what Istio checks for `https://`).
    pub wasm_sha256: &'a str,
}

/// An Istio `WasmPlugin` for `plugin` as YAML. Without `pinned` (the checked-in copy under
/// `istio/`) there is no `sha256` line; with it (`dist/istio/`), `sha256` is the manifest digest.
pub fn render_wasmplugin(
    plugin: &str,
    config: &Value,
    tag: &str,
    pinned: Option<Pinned<'_>>,
) -> Result<String> {
    let Some(place) = placement(plugin) else {
        bail!("{plugin}: no Istio placement (phase, priority, failStrategy) known for it");
    };
    if !config.is_object() {
        bail!("{plugin}: the example pluginConfig must be a JSON object");
    }
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# {plugin} as an Istio WasmPlugin on the ingress gateway."
    );
    match pinned {
        None => {
            let _ = writeln!(
                y,
                "# Generated from istio/config/{plugin}.json (rewrite with `cargo xtask istio-manifests`)."
            );
            y.push_str(
                "# `cargo xtask dist --oci` writes dist/istio/ copies that add the `sha256` of the\n\
                 # image it packed into dist/oci/; apply those. Replace REGISTRY with your registry.\n",
            );
        }
        Some(p) => {
            let _ = writeln!(
                y,
                "# Written by `cargo xtask dist --oci` with the image in dist/oci/{plugin}/.\n\
                 # Replace REGISTRY with the registry you pushed it to.\n\
                 # sha256 below = digest of the image manifest, which Istio checks for oci:// urls.\n\
                 # Serving the module over https instead? Use url: https://.../{plugin}.wasm and the\n\
                 # module's own sha256 (as in dist/SHA256SUMS):\n\
                 # sha256: {}",
                p.wasm_sha256
            );
        }
    }
    // The reason for the placement, wrapped as comment lines of at most 99 columns.
    let mut line = String::from("# Placement:");
    for word in place.why.split_whitespace() {
        if line.len() + 1 + word.len() > 98 {
            let _ = writeln!(y, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(y, "{line}.");
    y.push_str("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n");
    let _ = writeln!(y, "  name: {plugin}\n  namespace: istio-system");
    y.push_str("spec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n");
    let _ = writeln!(y, "  url: oci://{REGISTRY_PLACEHOLDER}/{plugin}:{tag}");
    if let Some(p) = pinned {
        let _ = writeln!(y, "  sha256: {}", p.manifest_sha256);
    }
    y.push_str("  imagePullPolicy: IfNotPresent\n");
    let _ = writeln!(y, "  phase: {}", place.phase);
    let _ = writeln!(y, "  priority: {}", place.priority);
    let _ = writeln!(y, "  failStrategy: {}", place.fail_strategy);
    y.push_str("  pluginConfig:\n");
    yaml_block(&mut y, config, 4);
    Ok(y)
}

/// Appends `value` (an object or array) as block YAML at `indent` spaces. Strings are written as
/// JSON strings (valid YAML double-quoted scalars), so no value is ever misread as a number,
/// bool, null or comment; arrays of scalars are written in flow style.
fn yaml_block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = yaml_key(k);
                if is_block(v) {
                    let _ = writeln!(out, "{pad}{key}:");
                    yaml_block(out, v, indent + 2);
                } else {
                    let _ = writeln!(out, "{pad}{key}: {}", yaml_flow(v));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key shares the dash line; the rest align under it.
                        let mut first = String::new();
                        yaml_block(&mut first, item, indent + 2);
                        let rest = first.get(indent + 2..).unwrap_or_default();
                        let _ = write!(out, "{pad}- {rest}");
                    }
                    Value::Array(inner) if !inner.is_empty() && inner.iter().any(is_block) => {
                        let _ = writeln!(out, "{pad}-");
                        yaml_block(out, item, indent + 2);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}- {}", yaml_flow(item));
                    }
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", yaml_flow(scalar));
        }
    }
}

/// Objects and arrays that hold an object or array are written as blocks; the rest inline.
fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => a.iter().any(|i| i.is_object() || i.is_array()),
        _ => false,
    }
}

/// A value inline, in JSON syntax (valid YAML flow style) with a space after `,` and `:`.
fn yaml_flow(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(yaml_flow).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), yaml_flow(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

/// A mapping key: plain when it is a simple identifier YAML cannot misread, quoted otherwise.
fn yaml_key(k: &str) -> String {
    let simple = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    let reserved = matches!(
        k.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
    );
    if simple && !reserved {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

/// Removes `dist/oci/` and `dist/istio/`: `cargo xtask dist` calls it before writing new
/// modules, so no image or manifest pinning an older module survives a rebuild.
pub fn remove_outputs(dist: &Path) -> Result<()> {
    for dir in [dist.join("oci"), dist.join("istio")] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
    }
    Ok(())
}

/// After `cargo xtask dist`: packs every written `dist/<plugin>.wasm` into
/// `dist/oci/<plugin>/` and writes `dist/istio/<plugin>.yaml`. Both folders are rebuilt from
/// scratch, so they hold exactly this build.
pub fn run(written: &[PathBuf]) -> Result<()> {
    let dist = workspace::dist_dir();
    let oci_root = dist.join("oci");
    let istio_out = dist.join("istio");
    remove_outputs(&dist)?;
    for dir in [&oci_root, &istio_out] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for wasm_path in written {
        let Some(plugin) = wasm_path.file_stem().and_then(|s| s.to_str()) else {
            bail!("{}: no plugin name in the file name", wasm_path.display());
        };
        let bytes = std::fs::read(wasm_path)
            .with_context(|| format!("cannot read {}", wasm_path.display()))?;
        let image = WasmImage::build(plugin, VERSION, &bytes)?;
        let layout = oci_root.join(plugin);
        image.write_layout(&layout)?;
        let config = example_config(plugin)?;
        let yaml = render_wasmplugin(
            plugin,
            &config,
            VERSION,
            Some(Pinned {
                manifest_sha256: image.istio_oci_sha256(),
                wasm_sha256: &image.wasm.sha256,
            }),
        )?;
        // Read back what a puller reads, so a broken layout never leaves this command.
        let report = check_layout(&layout)
            .with_context(|| format!("{}: invalid OCI layout", layout.display()))?;
        if report.wasm != bytes || manifest_sha256_field(&yaml) != Some(&report.manifest_sha256) {
            bail!(
                "{plugin}: the layout or the manifest does not pin {}",
                wasm_path.display()
            );
        }
        write(&istio_out.join(format!("{plugin}.yaml")), yaml.as_bytes())?;
        println!(
            "dist/oci/{plugin}:{}  manifest sha256:{}  -> dist/istio/{plugin}.yaml",
            report.tag, report.manifest_sha256
        );
    }
    println!(
        "push with e.g.: oras cp --from-oci-layout dist/oci/<plugin>:{VERSION} REGISTRY/<plugin>:{VERSION}\n\
         or:             skopeo copy oci:dist/oci/<plugin>:{VERSION} docker://REGISTRY/<plugin>:{VERSION}\n\
         (both keep the manifest byte for byte, so the sha256 in dist/istio/ stays valid)"
    );
    Ok(())
}

/// What a valid OCI layout holds.
#[derive(Debug, Default)]
pub struct LayoutReport {
    pub tag: String,
    pub manifest_sha256: String,
    pub wasm: Vec<u8>,
}

/// Reads an OCI image layout and checks it as Istio's fetcher would: `index.json` names one
/// manifest by tag; every descriptor's digest and size match the blob; the manifest has two
/// layers, one of them the Wasm layer. Returns the tag, the manifest digest and the module.
pub fn check_layout(dir: &Path) -> Result<LayoutReport> {
    let read =
        |p: PathBuf| std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()));
    let layout: Value = serde_json::from_slice(&read(dir.join("oci-layout"))?)?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        bail!("oci-layout: imageLayoutVersion is not 1.0.0");
    }
    let index: Value = serde_json::from_slice(&read(dir.join("index.json"))?)?;
    if index["schemaVersion"] != 2 || index["mediaType"] != OCI_INDEX_MEDIA_TYPE {
        bail!("index.json: not an OCI image index");
    }
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let [entry] = manifests.as_slice() else {
        bail!(
            "index.json: expected one manifest, found {}",
            manifests.len()
        );
    };
    let tag = entry["annotations"][REF_NAME_ANNOTATION]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if tag.is_empty() {
        bail!("index.json: the manifest has no {REF_NAME_ANNOTATION}");
    }
    let blob = |d: &Value, want_type: &str| -> Result<Vec<u8>> {
        if d["mediaType"] != want_type {
            bail!("descriptor {d}: media type is not {want_type}");
        }
        let digest = d["digest"].as_str().unwrap_or_default();
        let Some(hex) = digest.strip_prefix("sha256:") else {
            bail!("descriptor {d}: digest is not sha256:<hex>");
        };
        let bytes = read(dir.join("blobs").join("sha256").join(hex))?;
        if sha256_hex(&bytes) != hex {
            bail!("blob {hex}: content does not hash to its name");
        }
        if d["size"].as_u64() != Some(bytes.len() as u64) {
            bail!(
                "descriptor {d}: size {} != blob size {}",
                d["size"],
                bytes.len()
            );
        }
        Ok(bytes)
    };
    let manifest_bytes = blob(entry, OCI_MANIFEST_MEDIA_TYPE)?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)?;
    if manifest["schemaVersion"] != 2 {
        bail!("manifest: schemaVersion is not 2");
    }
    let config: Value =
        serde_json::from_slice(&blob(&manifest["config"], WASM_CONFIG_MEDIA_TYPE)?)?;
    if config["type"] != "envoy_proxy" {
        bail!("runtime config: type is not envoy_proxy");
    }
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    // Istio's extractOCIArtifactImage: "number of layers must be 2".
    if layers.len() != 2 {
        bail!(
            "manifest: Istio needs exactly 2 layers, found {}",
            layers.len()
        );
    }
    let mut wasm = None;
    for layer in &layers {
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        let bytes = blob(layer, media_type)?;
        match media_type {
            WASM_LAYER_MEDIA_TYPE => wasm = Some(bytes),
            WASM_CONFIG_MEDIA_TYPE => {}
            other => bail!("manifest: unexpected layer media type {other}"),
        }
    }
    let Some(wasm) = wasm else {
        bail!("manifest: no {WASM_LAYER_MEDIA_TYPE} layer");
    };
    // Istio's isValidWasmBinary.
    if wasm.len() < 8 || !wasm.starts_with(b"\0asm") {
        bail!("the Wasm layer is not a Wasm module");
    }
    Ok(LayoutReport {
        tag,
        manifest_sha256: sha256_hex(&manifest_bytes),
        wasm,
    })
}

/// The `sha256:` value of a generated manifest (the line under `spec:`), if any.
pub fn manifest_sha256_field(yaml: &str) -> Option<&str> {
    yaml.lines()
        .find_map(|l| l.strip_prefix("  sha256: "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_wasm(n: u8) -> Vec<u8> {
        let mut w = b"\0asm\x01\0\0\0".to_vec();
        w.extend((0..200u16).map(|i| (i as u8).wrapping_mul(n)));
        w
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-oci-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Where `cargo xtask test` put the build (it runs `dist --oci` first), else `dist/`.
    fn dist_dir() -> PathBuf {
        std::env::var_os("SUITE_DIST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(workspace::dist_dir)
    }

    #[test]
    fn layout_digests_and_sizes_match_the_blobs_and_the_layer_is_the_module() {
        let wasm = fake_wasm(3);
        let image = WasmImage::build("jwt-rbac", "0.1.0", &wasm).unwrap();
        let dir = tempdir("layout");
        image.write_layout(&dir).unwrap();
        let report = check_layout(&dir).unwrap();
        assert_eq!(report.tag, "0.1.0");
        assert_eq!(report.wasm, wasm, "the layer is the module byte for byte");
        assert_eq!(report.manifest_sha256, image.istio_oci_sha256());
        assert_eq!(image.wasm.sha256, sha256_hex(&wasm));
        // Exactly three blobs: module, runtime config, manifest.
        let blobs = std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count();
        assert_eq!(blobs, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_module_same_digests_different_module_different_manifest() {
        let a = WasmImage::build("audit-log", "0.1.0", &fake_wasm(5)).unwrap();
        let b = WasmImage::build("audit-log", "0.1.0", &fake_wasm(5)).unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.index, b.index);
        let c = WasmImage::build("audit-log", "0.1.0", &fake_wasm(7)).unwrap();
        assert_ne!(a.istio_oci_sha256(), c.istio_oci_sha256());
        // The tag is in index.json only, not in the layer: retagging keeps the module blob.
        let d = WasmImage::build("audit-log", "0.2.0", &fake_wasm(5)).unwrap();
        assert_eq!(a.wasm, d.wasm);
    }

    #[test]
    fn manifest_has_the_shape_istio_accepts() {
        let image = WasmImage::build("circuit-breaker", "0.1.0", &fake_wasm(1)).unwrap();
        let m: Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(m["mediaType"], OCI_MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "Istio's oci variant needs two layers");
        assert_eq!(layers[0]["mediaType"], WASM_LAYER_MEDIA_TYPE);
        assert_eq!(layers[1]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        let i: Value = serde_json::from_slice(&image.index).unwrap();
        assert_eq!(
            i["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            "0.1.0"
        );
    }

    #[test]
    fn refuses_what_is_not_a_module() {
        assert!(WasmImage::build("x", "0.1.0", b"not wasm").is_err());
    }

    #[test]
    fn a_tampered_blob_is_caught() {
        let image = WasmImage::build("header-injection", "0.1.0", &fake_wasm(9)).unwrap();
        let dir = tempdir("tamper");
        image.write_layout(&dir).unwrap();
        let p = dir.join("blobs/sha256").join(&image.wasm.sha256);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.push(0);
        std::fs::write(&p, bytes).unwrap();
        assert!(check_layout(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn yaml_quotes_every_string_and_keeps_structure() {
        let v = json!({
            "a": {"yes": "no", "n": 1, "list": ["x: y", "# not a comment", "-1"]},
            "rules": [{"name": "r", "key": [{"header": "x"}]}, {"requires": "anonymous"}],
            "empty": {}, "none": [], "odd key": true, "k": null
        });
        let mut y = String::new();
        yaml_block(&mut y, &v, 0);
        assert!(y.contains("  \"yes\": \"no\"\n"), "{y}");
        assert!(
            y.contains("  list: [\"x: y\", \"# not a comment\", \"-1\"]\n"),
            "{y}"
        );
        // serde_json's map is sorted: keys come out in alphabetical order.
        assert!(
            y.contains("rules:\n  - key:\n      - header: \"x\"\n    name: \"r\"\n"),
            "{y}"
        );
        assert!(y.contains("  - requires: \"anonymous\"\n"), "{y}");
        assert!(y.contains("empty: {}\n") && y.contains("none: []\n"), "{y}");
        assert!(
            y.contains("\"odd key\": true\n") && y.contains("k: null\n"),
            "{y}"
        );
    }

    #[test]
    fn checked_in_istio_manifests_match_the_configs() {
        // istio/<plugin>.yaml are what `render_wasmplugin` makes from istio/config/<plugin>.json
        // (without sha256). `cargo xtask istio-manifests` rewrites them after a config change.
        for place in istio_modules() {
            let config = example_config(place.plugin).unwrap();
            let want = render_wasmplugin(place.plugin, &config, VERSION, None).unwrap();
            let path = istio_dir().join(format!("{}.yaml", place.plugin));
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is out of date: run cargo xtask istio-manifests",
                path.display()
            );
            assert!(manifest_sha256_field(&have).is_none());
        }
    }

    #[test]
    fn chain_order_matches_the_readme() {
        let names: Vec<_> = ISTIO_CHAIN.iter().map(|p| p.plugin).collect();
        assert_eq!(
            names,
            [
                "header-injection",
                "jwt-rbac",
                "audit-log",
                "ratelimit-shared-data",
                "circuit-breaker"
            ]
        );
        // Istio runs AUTHN, then AUTHZ, then STATS; higher priority first within a phase.
        let rank = |p: &IstioPlacement| {
            let phase = ["AUTHN", "AUTHZ", "STATS"]
                .iter()
                .position(|x| *x == p.phase)
                .unwrap();
            (phase, -p.priority)
        };
        for pair in ISTIO_CHAIN.windows(2) {
            assert!(rank(&pair[0]) < rank(&pair[1]), "{pair:?}");
        }
    }

    /// Under `cargo xtask test` (which runs `cargo xtask dist --oci` first): for every built
    /// plugin, dist/oci/<plugin>/ is a valid layout whose Wasm layer is dist/<plugin>.wasm, and
    /// the sha256 in dist/istio/<plugin>.yaml is that layout's manifest digest. Run alone, it
    /// checks whatever `dist/` holds and skips what was not built.
    #[test]
    fn istio_manifests_pin_the_built_artifacts() {
        let dist = dist_dir();
        let under_xtask_test = std::env::var_os("SUITE_DIST_DIR").is_some();
        let mut checked = 0;
        for place in istio_modules() {
            let wasm_path = dist.join(format!("{}.wasm", place.plugin));
            let Ok(wasm) = std::fs::read(&wasm_path) else {
                assert!(!under_xtask_test, "{} missing", wasm_path.display());
                continue;
            };
            let layout = dist.join("oci").join(place.plugin);
            let yaml_path = dist.join("istio").join(format!("{}.yaml", place.plugin));
            if !layout.exists() && !under_xtask_test {
                continue;
            }
            let report =
                check_layout(&layout).unwrap_or_else(|e| panic!("{}: {e:#}", layout.display()));
            assert_eq!(report.tag, VERSION);
            assert!(
                report.wasm == wasm,
                "{}: the Wasm layer is not {} (stale? run cargo xtask dist --oci)",
                layout.display(),
                wasm_path.display()
            );
            let yaml = std::fs::read_to_string(&yaml_path)
                .unwrap_or_else(|e| panic!("{}: {e}", yaml_path.display()));
            assert_eq!(
                manifest_sha256_field(&yaml),
                Some(report.manifest_sha256.as_str()),
                "{}: sha256 is not the digest of the image manifest",
                yaml_path.display()
            );
            assert!(yaml.contains(&format!("sha256: {}", sha256_hex(&wasm))));
            // Same content as the checked-in manifest, plus the pin.
            let checked_in =
                std::fs::read_to_string(istio_dir().join(format!("{}.yaml", place.plugin)))
                    .unwrap();
            let spec = |s: &str| -> Vec<String> {
                s.lines()
                    .filter(|l| !l.starts_with('#') && !l.starts_with("  sha256: "))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(spec(&yaml), spec(&checked_in));
            checked += 1;
        }
        if under_xtask_test {
            assert_eq!(checked, istio_modules().count());
        }
    }
}
