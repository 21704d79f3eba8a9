//! Refusals for capabilities a composed dependency did not inherit.
//!
//! [`crate::compose`] routes each denied import of a dependency to a private
//! import name. Here every function of such an import is defined from its
//! type: a `result<_, E>` answers with `E`'s refusal case (`access-denied`,
//! `HTTP-request-denied`, `undefined(msg)`, `other(msg)`), a list or option
//! answers empty, anything else traps with a message naming the interface.
//! Resource types are defined opaquely: they can never be constructed,
//! because every constructor refuses.

use crate::compose::DeniedImport;
use crate::state::InstanceState;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Component, Linker, ResourceType, Val};
use wasmtime::Engine;

/// Marker type for resources of denied interfaces.
struct Denied;

/// Defines every denied import of `component` in `linker`.
pub fn link(
    linker: &mut Linker<InstanceState>,
    engine: &Engine,
    component: &Component,
    denied: &[DeniedImport],
) -> anyhow::Result<()> {
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        let Some(d) = denied.iter().find(|d| d.import == name) else {
            continue;
        };
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let mut inst = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::Resource(_) => {
                    inst.resource(export, ResourceType::host::<Denied>(), |_, _| Ok(()))?;
                }
                ComponentItem::ComponentFunc(func) => {
                    let interface = d.interface.clone();
                    let function = export.to_string();
                    inst.func_new(export, move |_store, _ty, _params, results| {
                        let message = format!("{interface} is not granted to this dependency");
                        refuse(&func, &message, results)
                            .ok_or_else(|| wasmtime::format_err!("{message} (called {function})"))
                    })?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Fills `results` with the refusal `func`'s type allows; `None` to trap.
fn refuse(func: &ComponentFunc, message: &str, results: &mut [Val]) -> Option<()> {
    let ty = func.results().next()?;
    let val = match ty {
        Type::List(_) => Val::List(Vec::new()),
        Type::Option(_) => Val::Option(None),
        Type::Result(r) => {
            let Some(Type::Variant(v)) = r.err() else {
                return None;
            };
            let cases: Vec<_> = v.cases().map(|c| (c.name.to_string(), c.ty)).collect();
            let pick = ["access-denied", "HTTP-request-denied", "undefined", "other"]
                .into_iter()
                .find_map(|want| cases.iter().find(|(n, _)| n == want))?;
            let payload = match &pick.1 {
                None => None,
                Some(Type::String) => Some(Box::new(Val::String(message.to_string()))),
                Some(_) => return None,
            };
            Val::Result(Err(Some(Box::new(Val::Variant(pick.0.clone(), payload)))))
        }
        _ => return None,
    };
    *results.first_mut()? = val;
    Some(())
}
