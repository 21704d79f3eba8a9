//! Which nodes can serve a task, and why the others cannot.

use crate::greenmesh::marketplace::types::{
    Declined, Node, NodeStatus, Offer, Requirements, SearchResult,
};

/// Splits `candidates` (nodes that list the capability) into offers and
/// declines with a reason each. The store's indexed query already picked
/// them; these rules are the same conditions, applied again so the reasons
/// are exact and a stale index row can never produce a wrong offer.
pub fn search(req: &Requirements, candidates: Vec<Node>, now_ms: u64) -> SearchResult {
    let mut offers = Vec::new();
    let mut declined = Vec::new();
    for node in candidates {
        match check(req, &node, now_ms) {
            Ok(capability) => offers.push(Offer { capability, node }),
            Err(reason) => declined.push(Declined {
                node_id: node.id.clone(),
                reason,
            }),
        }
    }
    SearchResult {
        eligible_total: offers.len() as u32,
        offers,
        declined,
        more_declined: 0,
    }
}

fn check(
    req: &Requirements,
    node: &Node,
    now_ms: u64,
) -> Result<crate::greenmesh::marketplace::types::Capability, String> {
    match node.status {
        NodeStatus::Online => {}
        NodeStatus::Offline => {
            let silent = now_ms.saturating_sub(node.last_seen) / 1000;
            return Err(format!("offline: no heartbeat for {silent} s"));
        }
        NodeStatus::Withdrawn => return Err("withdrawn from the marketplace".into()),
    }
    let capability = node
        .capabilities
        .iter()
        .find(|c| c.name == req.capability)
        .cloned()
        .ok_or_else(|| format!("does not offer {}", req.capability))?;
    if let Some(owner) = &req.owner {
        if node.owner != *owner {
            return Err("not one of the requester's own nodes (delegation vetoed)".into());
        }
    }
    let allowed = node
        .allowed_tasks
        .iter()
        .any(|t| t == "*" || *t == req.capability);
    if !allowed && !req.granted_nodes.contains(&node.id) {
        return Err(format!(
            "its allow-list does not include {}, and no grant covers it",
            req.capability
        ));
    }
    if let Some(dataset) = &req.dataset {
        if !node.datasets.iter().any(|d| d.name == *dataset) {
            return Err(format!("does not hold dataset {dataset}"));
        }
    }
    if node.energy.clean_share < req.min_clean_share {
        return Err(format!(
            "eco mode: {:.0} % clean energy, needs {:.0} %",
            node.energy.clean_share * 100.0,
            req.min_clean_share * 100.0
        ));
    }
    if req.require_gpu && node.capacity.gpu.is_none() {
        return Err("task requires a GPU; node has none".into());
    }
    if req.max_memory_mb > node.capacity.memory_mb {
        return Err(format!(
            "task needs {} MB of memory; node has {} MB",
            req.max_memory_mb, node.capacity.memory_mb
        ));
    }
    if req.input_bytes > capability.max_input_bytes {
        return Err(format!(
            "input is {} bytes; node accepts at most {}",
            req.input_bytes, capability.max_input_bytes
        ));
    }
    if node.load >= 1.0 {
        return Err("fully loaded".into());
    }
    Ok(capability)
}
