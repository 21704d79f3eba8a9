//! Misbehave guest: traps, spins, exhausts memory, overflows the stack or
//! answers more than a client reads, on demand.

use std::hint::black_box;

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> impl IntoResponse {
    let path = match req.header("spin-path-info").and_then(|v| v.as_str()) {
        Some(p) => p.to_owned(),
        None => req.path().to_owned(),
    };
    match path.as_str() {
        "/ok" => Response::new(200, "ok"),
        "/trap" => panic!("deliberate trap"),
        "/loop" => spin_forever(),
        "/bomb" => allocate_forever(),
        "/stack" => Response::new(200, recurse(black_box(0)).to_string()),
        // More than loopback's buffers hold: a client that never reads
        // leaves the guest waiting to write.
        "/big" => Response::new(200, vec![b'x'; 24 << 20]),
        _ => Response::new(404, "not found"),
    }
}

/// Busy loop the optimizer cannot remove.
fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Grows linear memory without bound, touching every page.
fn allocate_forever() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = black_box(vec![0xA5u8; 1 << 20]);
        hoard.push(chunk);
        black_box(&mut hoard);
    }
}

/// Unbounded, non-tail recursion with a live stack buffer per frame
/// (the opaque base case never fires; it only keeps the lint quiet).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = black_box([depth; 16]);
    let below = recurse(black_box(depth + 1));
    black_box(frame)[0].wrapping_add(below)
}
