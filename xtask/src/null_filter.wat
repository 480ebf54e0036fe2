;; The `wasm-null` configuration of `cargo xtask bench`: a proxy-wasm HTTP filter that does
;; nothing, written by hand so that no SDK, allocator or per-stream state is in it. It exports
;; the callbacks our plugins export for a request without a body (context create, request and
;; response headers, log, done, delete), and each returns at once. What Envoy spends on it is
;; the least any Wasm filter costs there: V8 entry and exit per callback, and Envoy's own
;; per-stream Wasm context.
(module
  (memory (export "memory") 2)
  ;; Bump allocator for what the host copies in (the plugin and VM configuration, at start).
  ;; Nothing is freed: after start, Envoy copies in only what a filter asks for, and this one
  ;; asks for nothing.
  (global $next (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $start i32)
    (local $end i32)
    (local $have i32)
    (local.set $start (global.get $next))
    (local.set $end
      (i32.add (local.get $start)
        (i32.and (i32.add (local.get $size) (i32.const 15)) (i32.const -16))))
    ;; Wrapped past 4 GiB: refuse (0 is the host's "no memory").
    (if (i32.lt_u (local.get $end) (local.get $start))
      (then (return (i32.const 0))))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16))
                  (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $next (local.get $end))
    (local.get $start))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; true: VM start and configuration accepted.
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  ;; 0: Continue.
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  ;; true: the stream's context may be deleted now.
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
)
