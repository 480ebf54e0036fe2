//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`.
//!
//! Metrics are shared by all workers; defining an existing name returns the same id. As Envoy:
//! - define: Ok; an unknown type is BadArgument.
//! - increment: counter by a positive offset (negative: BadArgument), gauge by any offset,
//!   histogram BadArgument; unknown id NotFound.
//! - record: counter adds, gauge sets, histogram records a sample; unknown id NotFound.
//! - get: counter/gauge value; histogram BadArgument; unknown id NotFound.

use super::{ok, status, GetState};
use crate::memory;
use crate::{Metric, MetricType, Profile, Status};
use wasmtime::{Caller, Linker};

/// All metrics of a harness, id = index + 1.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) all: Vec<Metric>,
}

impl Metrics {
    fn define(&mut self, profile: Profile, filter: &str, kind: MetricType, name: &str) -> u32 {
        if let Some(i) = self.all.iter().position(|m| m.name == name) {
            return i as u32 + 1;
        }
        self.all.push(Metric {
            name: name.to_string(),
            host_name: profile.metric_name(filter, name),
            kind,
            value: 0,
            samples: Vec::new(),
        });
        self.all.len() as u32
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Metric> {
        self.all.get_mut((id as usize).checked_sub(1)?)
    }

    fn increment(&mut self, id: u32, offset: i64) -> Status {
        let Some(m) = self.get_mut(id) else {
            return Status::NotFound;
        };
        match m.kind {
            MetricType::Counter if offset > 0 => m.value = m.value.saturating_add(offset),
            MetricType::Gauge => m.value = m.value.saturating_add(offset),
            _ => return Status::BadArgument,
        }
        Status::Ok
    }

    fn record(&mut self, id: u32, value: u64) -> Status {
        let Some(m) = self.get_mut(id) else {
            return Status::NotFound;
        };
        let v = i64::try_from(value).unwrap_or(i64::MAX);
        match m.kind {
            MetricType::Counter => m.value = m.value.saturating_add(v),
            MetricType::Gauge => m.value = v,
            MetricType::Histogram => {
                m.samples.push(value);
                m.value = m.samples.len() as i64;
            }
        }
        Status::Ok
    }

    fn value(&mut self, id: u32) -> Result<u64, Status> {
        let m = self.get_mut(id).ok_or(Status::NotFound)?;
        match m.kind {
            MetricType::Histogram => Err(Status::BadArgument),
            _ => Ok(m.value as u64),
        }
    }
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
            let call = "proxy_define_metric";
            let name = memory::read(&mut caller, call, np, nl)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            let Some(kind) = MetricType::from_raw(kind) else {
                return status(Status::BadArgument);
            };
            let state = get(caller.data_mut());
            if let Some(s) = super::injected(state, call) {
                return status(s);
            }
            let (profile, filter) = (state.profile(), state.config.filter_name.clone());
            let id = state.world().metrics.define(profile, &filter, kind, &name);
            memory::write_u32(&mut caller, call, id_ptr, id)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        move |mut caller: Caller<'_, T>, id: i32, offset: i64| -> wasmtime::Result<i32> {
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_increment_metric") {
                return status(s);
            }
            let result = get(caller.data_mut())
                .world()
                .metrics
                .increment(id as u32, offset);
            status(result)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        move |mut caller: Caller<'_, T>, id: i32, value: i64| -> wasmtime::Result<i32> {
            if let Some(s) = super::injected(get(caller.data_mut()), "proxy_record_metric") {
                return status(s);
            }
            let result = get(caller.data_mut())
                .world()
                .metrics
                .record(id as u32, value as u64);
            status(result)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        move |mut caller: Caller<'_, T>, id: i32, ptr: i32| -> wasmtime::Result<i32> {
            let value = get(caller.data_mut()).world().metrics.value(id as u32);
            match value {
                Ok(v) => {
                    memory::write_u64(&mut caller, "proxy_get_metric", ptr, v)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    Ok(())
}
