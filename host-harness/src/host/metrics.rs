//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`.
//!
//! Metrics are shared by all workers; defining an existing name returns the same id.
//!
//! Envoy:
//! - define: Ok; an unknown type is BadArgument. Ids are 1, 2, ...
//! - increment: counter by a positive offset (negative: BadArgument), gauge by any offset,
//!   histogram BadArgument; unknown id NotFound.
//! - record: counter adds, gauge sets, histogram records a sample; unknown id NotFound.
//! - get: counter/gauge value; histogram BadArgument; unknown id NotFound.
//!
//! Kong 3.8/3.9 (ngx_proxy_wasm_host.c ngx_proxy_wasm_hfuncs_{define,increment,record,get}_metric
//! over ngx_wa_metrics.c, 9136e463 and 96b4e27e): every failure traps (NGX_WAVM_ERROR,
//! `host trap (internal error): ...`):
//! - define: the id is the CRC32 of the prefixed name (ngx_wa_metrics_define); an existing
//!   name returns its id whatever the type; an unknown type traps `could not define metric
//!   "<name>": unknown type "<n>"`; `4 + len(filter) + len(name) > 256`
//!   (max_metric_name_length) traps `could not define metric: name "<name>" too long`.
//! - increment (ngx_wa_metrics_increment): counters only, any offset (`counter += n`); a gauge
//!   or histogram traps `could not increment metric id "<id>": metric not a counter`.
//! - record (ngx_wa_metrics_record): gauge sets, histogram records; a counter traps
//!   `could not record value in metric id "<id>": metric is a counter`.
//! - get: counter/gauge value; a histogram traps `could not retrieve metric id "<id>": metric
//!   is a histogram`.
//! - an unknown id traps `...: metric not found` in increment, record and get.

use super::{engine_trap, ok, status, GetState, TrapKind};
use crate::error::HostTrap;
use crate::memory;
use crate::{Metric, MetricType, Profile, Status};
use wasmtime::{Caller, Linker};

/// ngx_wasmx.h, NGX_WA_METRICS_DEFAULT_MAX_NAME_LEN.
const KONG_MAX_NAME_LEN: usize = 256;

/// All metrics of a harness.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) all: Vec<Metric>,
    /// Id of each metric (`all[i]` has `ids[i]`): index + 1 on Envoy, CRC32 on Kong.
    ids: Vec<u32>,
}

impl Metrics {
    fn define(&mut self, profile: Profile, filter: &str, kind: MetricType, name: &str) -> u32 {
        let host_name = profile.metric_name(filter, name);
        if let Some(i) = self.all.iter().position(|m| m.host_name == host_name) {
            return self.ids[i];
        }
        let id = if profile.is_kong() {
            crc32fast::hash(host_name.as_bytes())
        } else {
            self.all.len() as u32 + 1
        };
        self.all.push(Metric {
            name: name.to_string(),
            host_name,
            kind,
            value: 0,
            samples: Vec::new(),
        });
        self.ids.push(id);
        id
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Metric> {
        let i = self.ids.iter().position(|&x| x == id)?;
        self.all.get_mut(i)
    }

    fn increment(&mut self, profile: Profile, id: u32, offset: i64) -> Result<Status, String> {
        let kong = profile.is_kong();
        let Some(m) = self.get_mut(id) else {
            if kong {
                return Err(format!(
                    "could not increment metric id \"{id}\": metric not found"
                ));
            }
            return Ok(Status::NotFound);
        };
        match (m.kind, kong) {
            (MetricType::Counter, true) => m.value = m.value.saturating_add(offset),
            (_, true) => {
                return Err(format!(
                    "could not increment metric id \"{id}\": metric not a counter"
                ))
            }
            (MetricType::Counter, false) if offset > 0 => m.value = m.value.saturating_add(offset),
            (MetricType::Gauge, false) => m.value = m.value.saturating_add(offset),
            _ => return Ok(Status::BadArgument),
        }
        Ok(Status::Ok)
    }

    fn record(&mut self, profile: Profile, id: u32, value: u64) -> Result<Status, String> {
        let kong = profile.is_kong();
        let Some(m) = self.get_mut(id) else {
            if kong {
                return Err(format!(
                    "could not record value in metric id \"{id}\": metric not found"
                ));
            }
            return Ok(Status::NotFound);
        };
        let v = i64::try_from(value).unwrap_or(i64::MAX);
        match m.kind {
            MetricType::Counter if kong => {
                return Err(format!(
                    "could not record value in metric id \"{id}\": metric is a counter"
                ))
            }
            MetricType::Counter => m.value = m.value.saturating_add(v),
            MetricType::Gauge => m.value = v,
            MetricType::Histogram => {
                m.samples.push(value);
                m.value = m.samples.len() as i64;
            }
        }
        Ok(Status::Ok)
    }

    fn value(&mut self, profile: Profile, id: u32) -> Result<Result<u64, Status>, String> {
        let kong = profile.is_kong();
        let Some(m) = self.get_mut(id) else {
            if kong {
                return Err(format!(
                    "could not retrieve metric id \"{id}\": metric not found"
                ));
            }
            return Ok(Err(Status::NotFound));
        };
        match m.kind {
            MetricType::Histogram if kong => Err(format!(
                "could not retrieve metric id \"{id}\": metric is a histogram"
            )),
            MetricType::Histogram => Ok(Err(Status::BadArgument)),
            _ => Ok(Ok(m.value as u64)),
        }
    }
}

fn internal(call: &'static str, message: String) -> HostTrap {
    engine_trap(call, TrapKind::Internal, &message)
}

pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: GetState<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        move |mut caller: Caller<'_, T>,
              kind: i32,
              np: i32,
              nl: i32,
              id_ptr: i32|
              -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_define_metric");
            let call = "proxy_define_metric";
            let name = memory::read(&mut caller, call, np, nl)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            let state = get(caller.data_mut());
            let profile = state.profile();
            let Some(kind) = MetricType::from_raw(kind) else {
                if profile.is_kong() {
                    return Err(internal(
                        call,
                        format!("could not define metric \"{name}\": unknown type \"{kind}\""),
                    )
                    .into());
                }
                return status(Status::BadArgument);
            };
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let filter = state.config.filter_name.clone();
            if profile.is_kong() && 4 + filter.len() + name.len() > KONG_MAX_NAME_LEN {
                return Err(internal(
                    call,
                    format!("could not define metric: name \"{name}\" too long"),
                )
                .into());
            }
            let id = state.world().metrics.define(profile, &filter, kind, &name);
            memory::write_u32(&mut caller, call, id_ptr, id)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        move |mut caller: Caller<'_, T>, id: i32, offset: i64| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_increment_metric");
            let call = "proxy_increment_metric";
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let profile = state.profile();
            let result = state.world().metrics.increment(profile, id as u32, offset);
            match result {
                Ok(s) => status(s),
                Err(message) => Err(internal(call, message).into()),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        move |mut caller: Caller<'_, T>, id: i32, value: i64| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_record_metric");
            let call = "proxy_record_metric";
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let profile = state.profile();
            let result = state
                .world()
                .metrics
                .record(profile, id as u32, value as u64);
            match result {
                Ok(s) => status(s),
                Err(message) => Err(internal(call, message).into()),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        move |mut caller: Caller<'_, T>, id: i32, ptr: i32| -> wasmtime::Result<i32> {
            crate::host::crossed(get(caller.data_mut()), "proxy_get_metric");
            let call = "proxy_get_metric";
            let state = get(caller.data_mut());
            let profile = state.profile();
            let value = state.world().metrics.value(profile, id as u32);
            match value {
                Ok(Ok(v)) => {
                    memory::write_u64(&mut caller, call, ptr, v)?;
                    ok()
                }
                Ok(Err(s)) => status(s),
                Err(message) => Err(internal(call, message).into()),
            }
        },
    )?;
    Ok(())
}
