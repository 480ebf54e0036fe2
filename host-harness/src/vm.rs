//! One VM (worker): a wasmtime `Store<HostState>` and its `Instance`.

use crate::error::HarnessError;
use crate::profile::Phase;
use crate::state::HostState;
use crate::LogLevel;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use wasmtime::{
    Config, Engine, ExternType, FuncType, Instance, Linker, Module, OptLevel, Store, Val,
};

/// Compiled modules are immutable: one engine and a compile cache per test process keep
/// parallel tests from recompiling the same plugin. No host state lives here.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::None);
        Engine::new(&config).unwrap_or_else(|_| Engine::default())
    })
}

pub(crate) fn compile(bytes: &[u8]) -> Result<Module, HarnessError> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, Module>>> = OnceLock::new();
    // Held while compiling: parallel tests loading the same plugin wait for one compilation.
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = cache.get(bytes) {
        return Ok(m.clone());
    }
    let module = match load_cached(bytes) {
        Some(m) => m,
        None => {
            let m = Module::new(engine(), bytes)
                .map_err(|e| HarnessError::Compile(format!("{e:?}")))?;
            store_cached(bytes, &m);
            m
        }
    };
    check_abi(&module)?;
    cache.insert(bytes.to_vec(), module.clone());
    Ok(module)
}

/// Compiling with a debug-built cranelift takes seconds, so compiled modules are also kept on
/// disk under `<target>/guest/module-cache`, keyed by a hash of the bytes and the wasmtime
/// version. Any failure to read or write the cache just means compiling again.
fn cache_path(bytes: &[u8]) -> Option<std::path::PathBuf> {
    use std::hash::{Hash, Hasher};
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let name = format!("{:016x}-{}.cwasm", hasher.finish(), bytes.len());
    target
        .is_dir()
        .then(|| target.join("guest/module-cache").join(name))
}

fn load_cached(bytes: &[u8]) -> Option<Module> {
    let path = cache_path(bytes)?;
    if !path.is_file() {
        return None;
    }
    // SAFETY: the file was written by `store_cached` with `Module::serialize` of this engine
    // configuration; wasmtime checks its version and configuration header before use.
    unsafe { Module::deserialize_file(engine(), &path) }.ok()
}

fn store_cached(bytes: &[u8], module: &Module) {
    let (Some(path), Ok(data)) = (cache_path(bytes), module.serialize()) else {
        return;
    };
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, data).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

fn check_abi(module: &Module) -> Result<(), HarnessError> {
    let markers: Vec<String> = module
        .exports()
        .map(|e| e.name().to_string())
        .filter(|n| n.starts_with("proxy_abi_version_"))
        .collect();
    if markers.iter().any(|m| m == "proxy_abi_version_0_2_1") {
        return Ok(());
    }
    Err(HarnessError::UnsupportedAbi {
        found: if markers.is_empty() {
            "no proxy_abi_version_* export".into()
        } else {
            markers.join(", ")
        },
    })
}

pub(crate) struct Vm {
    pub(crate) store: Store<HostState>,
    instance: Instance,
    pub(crate) failed: Option<String>,
    pub(crate) next_context_id: u32,
    pub(crate) started: bool,
}

impl Vm {
    /// Links, checks imports (naming the first unknown one), instantiates and runs
    /// `_initialize` (or `_start`), then creates the root context.
    pub(crate) fn new(module: &Module, state: HostState) -> Result<Vm, HarnessError> {
        let profile = state.config.profile;
        let mut linker: Linker<HostState> = Linker::new(engine());
        crate::host::add_to_linker(&mut linker, |s| s)
            .map_err(|e| HarnessError::Instantiate(format!("{e:?}")))?;
        if profile.is_kong() {
            crate::host::add_kong_overrides(&mut linker, |s| s)
                .map_err(|e| HarnessError::Instantiate(format!("{e:?}")))?;
        }
        let mut store = Store::new(engine(), state);
        for import in module.imports() {
            let Ok(found) = linker.get(&mut store, import.module(), import.name()) else {
                return Err(HarnessError::UnknownImport {
                    module: import.module().to_string(),
                    name: import.name().to_string(),
                });
            };
            // The engine links with the signature of its own declaration (ngx_wrt_wasmtime.c,
            // ngx_wasmtime_link_module: wasmtime_linker_define_func with the host's functype),
            // so a module importing another signature does not instantiate.
            if let (ExternType::Func(wanted), Some(func)) = (import.ty(), found.into_func()) {
                let declared = func.ty(&store);
                if !FuncType::eq(&wanted, &declared) {
                    return Err(HarnessError::IncompatibleImport {
                        module: import.module().to_string(),
                        name: import.name().to_string(),
                        expected: declared.to_string(),
                        found: wanted.to_string(),
                    });
                }
            }
        }
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(|e| HarnessError::Instantiate(format!("{e:?}")))?;
        let mut vm = Vm {
            store,
            instance,
            failed: None,
            next_context_id: 2,
            started: false,
        };
        let init = if vm.instance.get_func(&mut vm.store, "_initialize").is_some() {
            "_initialize"
        } else {
            "_start"
        };
        vm.call(init, 0, Phase::Init, &[])?;
        let root = vm.store.data().root_context_id;
        vm.call(
            "proxy_on_context_create",
            root,
            Phase::Init,
            &[Val::I32(root as i32), Val::I32(0)],
        )?;
        Ok(vm)
    }

    pub(crate) fn state(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Calls an export with the host's current context set to `context`. A missing export is
    /// a no-op returning None (as Envoy treats absent callbacks). A trap kills the VM.
    pub(crate) fn call(
        &mut self,
        name: &str,
        context: u32,
        phase: Phase,
        args: &[Val],
    ) -> Result<Option<i32>, HarnessError> {
        let worker = self.store.data().worker;
        if let Some(message) = &self.failed {
            return Err(HarnessError::VmFailed {
                worker,
                message: message.clone(),
            });
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        {
            let state = self.store.data_mut();
            state.context_id = context;
            state.phase = phase;
            state.crossed(crate::crossings::Kind::Callback(name));
        }
        let logs_before = self.store.data().world().logs.len();
        let ty = func.ty(&self.store);
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        let outcome = func.call(&mut self.store, args, &mut results);
        self.store.data_mut().phase = Phase::Init;
        match outcome {
            Ok(()) => Ok(results.first().and_then(Val::i32)),
            Err(source) => {
                let critical = {
                    let state = self.store.data();
                    let world = state.world();
                    world
                        .logs
                        .iter()
                        .skip(logs_before)
                        .rev()
                        .find(|l| l.worker == worker && l.level == LogLevel::Critical)
                        .map(|l| l.message.clone())
                };
                let mut message = format!("{source:#}");
                if let Some(panic) = critical {
                    message = format!("{message} (guest critical log: {panic})");
                }
                self.failed = Some(message.clone());
                Err(HarnessError::Trap {
                    callback: name.to_string(),
                    message,
                    error: source,
                })
            }
        }
    }
}
