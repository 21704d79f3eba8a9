//! Every kernel, run by a real `greenmesh provide` process for a task
//! submitted to a real `greenmesh up` process on loopback, returns the result its native build computes, under a
//! receipt signed by the node. Inputs are the kernels' own generated test
//! media (PNG scenes, a noisy WAV, a shaken Y4M clip), uploaded as blobs.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use greenmesh_kernel::{Kernel, Payload};
use greenmesh_protocol::Receipt;
use greenmesh_tests::node::register_user;
use greenmesh_tests::process::{free_port, spawn_coordinator, wait_healthy};
use greenmesh_tests::provider::{kernel, wait_for_node, ProviderSpec};
use greenmesh_tests::send_with;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

type Native = fn(Payload, &str) -> Result<Payload, greenmesh_kernel::KernelError>;

/// (capability, task_type, input, native build)
fn cases() -> Vec<(&'static str, &'static str, (Payload, String), Native)> {
    vec![
        (
            "image-filter",
            "image-filter",
            image_filter::testdata::sample_input(),
            image_filter::ImageFilter::run,
        ),
        (
            "object-detect",
            "object_recognition",
            object_detect::testdata::sample_input(),
            object_detect::ObjectDetect::run,
        ),
        (
            "audio-denoise",
            "audio-denoise",
            audio_denoise::testdata::sample_input(),
            audio_denoise::AudioDenoise::run,
        ),
        (
            "video-stabilize",
            "video-stabilize",
            video_stabilize::testdata::sample_input(),
            video_stabilize::VideoStabilize::run,
        ),
    ]
}

/// The largest difference between two WAVs' samples (they may differ in the
/// last bits: the sandbox's `exp`/`log` are not the host's libm).
fn wav_max_difference(a: &[u8], b: &[u8]) -> f32 {
    let (a, b) = (
        audio_denoise::wav::decode(a).unwrap(),
        audio_denoise::wav::decode(b).unwrap(),
    );
    assert_eq!(a.channels.len(), b.channels.len());
    a.channels
        .iter()
        .zip(&b.channels)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[tokio::test]
async fn every_kernel_returns_its_native_result_under_a_signed_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // One requester runs every kernel with 512 MB, beyond the free tier;
    // tier limits have their own tests (governance.rs).
    let mut coordinator = spawn_coordinator(
        &dir.path().join("state"),
        port,
        &[("SPIN_VARIABLE_QUOTAS", "off")],
    );
    wait_healthy(addr).await;
    let token = register_user(addr, "requester").await.unwrap();
    let auth = format!("Bearer {token}");
    let kernels = dir.path().join("kernels");
    std::fs::create_dir_all(&kernels).unwrap();
    for (name, ..) in cases() {
        std::fs::copy(kernel(name), kernels.join(format!("{name}.wasm"))).unwrap();
    }
    let provider = ProviderSpec::new(addr, &token, &kernels, &dir.path().join("node"))
        .env("MESH_PEER_ID", "media")
        .spawn();
    let names: Vec<&str> = cases().iter().map(|c| c.0).collect();
    let node = wait_for_node(addr, &names, Duration::from_secs(120)).await;
    let node_key = greenmesh_protocol::public_key(node["public_key"].as_str().unwrap()).unwrap();

    for (capability, task_type, (input, params), native) in cases() {
        let blob = send_with(
            addr,
            "POST",
            "/api/v1/blobs",
            Bytes::from(input.bytes.clone()),
            &[("authorization", &auth)],
        )
        .await
        .unwrap();
        assert!(blob.status == 201 || blob.status == 200, "{}", blob.text());
        let reference = blob.json()["reference"].as_str().unwrap().to_string();
        let task = json!({
            "task_type": task_type,
            "inputs": {
                "data": { "blob": reference },
                "media_type": input.media_type,
                "params": serde_json::from_str::<Value>(&params).unwrap(),
            },
            "requirements": { "max_execution_time_sec": 60, "max_memory_mb": 512 },
            "max_price": 100.0,
        });
        let r = send_with(
            addr,
            "POST",
            "/api/v1/tasks",
            Bytes::from(task.to_string()),
            &[("authorization", &auth)],
        )
        .await
        .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let mut done = Value::Null;
        for _ in 0..6 {
            done = send_with(
                addr,
                "GET",
                &format!("/api/v1/tasks/{id}?wait=20"),
                Bytes::new(),
                &[("authorization", &auth)],
            )
            .await
            .unwrap()
            .json();
            if done["status"] != "leased" && done["status"] != "queued" {
                break;
            }
        }
        assert_eq!(
            done["status"],
            "completed",
            "{capability}: {done}\n{}",
            provider.log()
        );

        let receipt: Receipt = serde_json::from_value(done["result"]["receipt"].clone()).unwrap();
        assert_eq!(
            receipt.verify(&node_key),
            Ok(()),
            "{capability}: receipt signed by the node"
        );
        let output_text = done["result"]["output"].as_str().unwrap();
        assert_eq!(
            receipt.output_sha256,
            greenmesh_protocol::sha256_hex(output_text.as_bytes())
        );

        let expected = native(input.clone(), &params).unwrap();
        let output: Value = serde_json::from_str(output_text).unwrap();
        assert_eq!(
            output["media_type"],
            expected.media_type.as_str(),
            "{capability}"
        );
        if expected.media_type == "application/json" {
            let native_json: Value = serde_json::from_slice(&expected.bytes).unwrap();
            assert_eq!(
                output["json"], native_json,
                "{capability}: same detections as native"
            );
            assert!(!native_json["bounding_boxes"].as_array().unwrap().is_empty());
        } else {
            let bytes = BASE64.decode(output["base64"].as_str().unwrap()).unwrap();
            if capability == "audio-denoise" {
                let worst = wav_max_difference(&bytes, &expected.bytes);
                assert!(
                    worst <= 2.0 / 32768.0,
                    "{capability}: samples differ by up to {worst}"
                );
            } else if capability == "image-filter" {
                // A node with a GPU blurs there: within one level of the CPU.
                let (got, want) = (
                    image_filter::codec::decode_png(&bytes).unwrap(),
                    image_filter::codec::decode_png(&expected.bytes).unwrap(),
                );
                let worst = got
                    .pixels
                    .iter()
                    .zip(&want.pixels)
                    .map(|(g, w)| g.abs_diff(*w))
                    .max();
                assert_eq!(got.pixels.len(), want.pixels.len());
                assert!(
                    worst <= Some(1),
                    "{capability}: differs by {worst:?} levels"
                );
            } else {
                assert!(
                    bytes == expected.bytes,
                    "{capability}: output differs from the native build"
                );
            }
        }
    }
    provider.interrupt().await;
    coordinator.kill();
}
