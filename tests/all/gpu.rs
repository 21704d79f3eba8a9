//! `greenmesh:gpu` on real wgpu (Mesa's lavapipe in CI): the computation,
//! image-filter and object-detect kernels' GPU paths agree with their CPU
//! paths, GPU misuse fails only the task with a clear reason, and a
//! GPU-less sandbox falls back to the CPU.
//!
//! Without an adapter these tests fail when `CI` is set and are reported
//! skipped otherwise (`greenmesh_tests::skip`, counted by `.ci/run`).

use greenmesh_kernel::gpu::bytes_f32;
use greenmesh_kernel::Kernel;
use greenmesh_provider::catalog;
use greenmesh_provider::executor::{RunLimits, Sandbox};
use greenmesh_provider::gpu::Gpu;
use greenmesh_tests::guest;
use greenmesh_tests::provider::kernel;
use std::sync::Arc;
use std::time::Duration;

fn gpu() -> Option<Arc<Gpu>> {
    let gpu = Gpu::open().expect("opening wgpu");
    if gpu.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no GPU adapter in CI: install mesa-vulkan-drivers and set WGPU_BACKEND=vulkan"
        );
        greenmesh_tests::skip("no GPU adapter (install mesa-vulkan-drivers for lavapipe)");
    }
    gpu
}

fn limits() -> RunLimits {
    RunLimits {
        max_gpu_dispatches: 16,
        ..RunLimits::measuring(256 << 20)
    }
}

fn run(
    sandbox: &Sandbox,
    k: &catalog::Installed,
    input: &[u8],
    params: &str,
) -> Result<Vec<u8>, String> {
    sandbox
        .run(
            &k.prepared,
            "application/octet-stream",
            input,
            params,
            &limits(),
        )
        .outcome
        .map(|o| o.bytes)
        .map_err(|e| e.to_string())
}

#[test]
fn matmul_on_the_gpu_matches_the_cpu_path() {
    let Some(gpu) = gpu() else { return };
    let with_gpu = Sandbox::new(256 << 20, Some(gpu)).unwrap();
    let cpu_only = Sandbox::new(256 << 20, None).unwrap();
    let on_gpu = catalog::load(&with_gpu, &kernel("computation")).unwrap();
    let on_cpu = catalog::load(&cpu_only, &kernel("computation")).unwrap();
    // Multiples of the 16×16 tile and not.
    for (m, k, n) in [(64, 64, 64), (37, 50, 23), (1, 129, 3)] {
        let (input, params) = computation::testdata::matmul_input(m, k, n, u64::from(m));
        let gpu_out = bytes_f32(&run(&with_gpu, &on_gpu, &input.bytes, &params).unwrap());
        let cpu_out = bytes_f32(&run(&cpu_only, &on_cpu, &input.bytes, &params).unwrap());
        assert_eq!(gpu_out.len(), (m * n) as usize);
        let tolerance = 1e-4 * k as f32;
        let worst = gpu_out
            .iter()
            .zip(&cpu_out)
            .map(|(g, c)| (g - c).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= tolerance,
            "{m}×{k}×{n}: GPU and CPU differ by {worst}"
        );
        // Forcing the CPU in the GPU sandbox gives the CPU result exactly.
        let forced = params.replace("\"auto\"", "\"cpu\"");
        assert_eq!(
            bytes_f32(&run(&with_gpu, &on_gpu, &input.bytes, &forced).unwrap()),
            cpu_out
        );
    }
}

#[test]
fn gpu_misuse_fails_the_task_cleanly_and_the_gpu_keeps_working() {
    let Some(gpu) = gpu() else { return };
    let sandbox = Sandbox::new(256 << 20, Some(gpu)).unwrap();
    let hostile = catalog::load(&sandbox, &guest("hostile_kernel")).unwrap();
    for (mode, reason) in [
        ("gpu_bad_shader", "invalid shader"),
        ("gpu_huge_buffer", "buffer size"),
        ("gpu_bad_dispatch", "workgroups"),
        ("gpu_missing_binding", "invalid GPU argument"),
    ] {
        let err = run(
            &sandbox,
            &hostile,
            b"ping",
            &format!(r#"{{"mode":"{mode}"}}"#),
        )
        .unwrap_err();
        assert!(err.contains(reason), "{mode}: {err}");
    }
    let computation = catalog::load(&sandbox, &kernel("computation")).unwrap();
    let (input, params) = computation::testdata::matmul_input(32, 32, 32, 3);
    let out = run(&sandbox, &computation, &input.bytes, &params).unwrap();
    assert_eq!(
        out.len(),
        32 * 32 * 4,
        "the device still works after the misuse"
    );
}

#[test]
fn gpu_buffers_count_against_the_lease_memory_limit() {
    let Some(gpu) = gpu() else { return };
    let sandbox = Sandbox::new(256 << 20, Some(gpu)).unwrap();
    let hostile = catalog::load(&sandbox, &guest("hostile_kernel")).unwrap();
    // 1 MiB buffers kept alive until refused: fewer than 32 fit in a
    // 32 MiB lease, since the kernel's own memory counts too.
    let report = sandbox.run(
        &hostile.prepared,
        "application/octet-stream",
        b"ping",
        r#"{"mode":"gpu_hoard"}"#,
        &RunLimits {
            max_memory_bytes: 32 << 20,
            ..limits()
        },
    );
    let err = report.outcome.unwrap_err().to_string();
    let kept: usize = err
        .split("after ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        err.contains("GPU memory") && err.contains("kernel's memories and GPU buffers"),
        "{err}"
    );
    assert!((16..32).contains(&kept), "{kept} buffers: {err}");
    assert!(report.peak_memory_bytes <= 32 << 20);
    assert!(
        report.peak_memory_bytes >= (kept as u64) << 20,
        "{}",
        report.peak_memory_bytes
    );
}

#[test]
fn a_big_gpu_write_counts_its_staging_copy_against_the_lease() {
    let Some(gpu) = gpu() else { return };
    let sandbox = Sandbox::new(256 << 20, Some(gpu)).unwrap();
    let hostile = catalog::load(&sandbox, &guest("hostile_kernel")).unwrap();
    let run = |max_memory_bytes| {
        sandbox.run(
            &hostile.prepared,
            "application/octet-stream",
            b"ping",
            r#"{"mode":"gpu_big_write"}"#,
            &RunLimits {
                max_memory_bytes,
                ..limits()
            },
        )
    };
    // A 12 MiB buffer and the kernel's 12 MiB of bytes fit in 32 MiB; the
    // write's 12 MiB staging copy beside them does not.
    let report = run(32 << 20);
    let err = report.outcome.unwrap_err().to_string();
    assert!(
        err.contains("write:") && err.contains("GPU memory"),
        "{err}"
    );
    assert!(report.peak_memory_bytes <= 32 << 20);
    // With room for the copy, the same write succeeds, and the peak shows it.
    let report = run(64 << 20);
    assert!(report.outcome.is_ok(), "{:?}", report.outcome.err());
    assert!(
        report.peak_memory_bytes >= 36 << 20,
        "{}",
        report.peak_memory_bytes
    );
}

#[tokio::test]
async fn a_gpu_node_advertises_its_adapter_and_serves_require_gpu_tasks() {
    use base64::Engine as _;
    let Some(_) = gpu() else { return };
    let engine = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let app = greenmesh_tests::Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let token = greenmesh_tests::node::register_user(app.addr, "owner")
        .await
        .unwrap();
    let kernels = dir.path().join("kernels");
    std::fs::create_dir_all(&kernels).unwrap();
    std::fs::copy(kernel("computation"), kernels.join("computation.wasm")).unwrap();
    let provider = greenmesh_tests::provider::ProviderSpec::new(
        app.addr,
        &token,
        &kernels,
        &dir.path().join("node"),
    )
    .spawn();
    let node = greenmesh_tests::provider::wait_for_node(
        app.addr,
        &["computation"],
        Duration::from_secs(60),
    )
    .await;
    let advertised = node["capacity"]["gpu"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(advertised.contains("vulkan"), "capacity.gpu: {node}");

    let (input, params) = computation::testdata::matmul_input(40, 24, 56, 9);
    let task = serde_json::json!({
        "task_type": "computation",
        "inputs": {
            "data": engine.encode(&input.bytes),
            "media_type": input.media_type,
            "params": serde_json::from_str::<serde_json::Value>(&params).unwrap(),
        },
        "requirements": { "require_gpu": true },
        "max_price": 10.0,
    });
    let auth = format!("Bearer {token}");
    let r = greenmesh_tests::send_with(
        app.addr,
        "POST",
        "/api/v1/tasks",
        bytes::Bytes::from(task.to_string()),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let done = greenmesh_tests::send_with(
        app.addr,
        "GET",
        &format!("/api/v1/tasks/{id}?wait=20"),
        bytes::Bytes::new(),
        &[("authorization", &auth)],
    )
    .await
    .unwrap()
    .json();
    assert_eq!(done["status"], "completed", "{done}\n{}", provider.log());
    let output: serde_json::Value =
        serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
    let got = bytes_f32(&engine.decode(output["base64"].as_str().unwrap()).unwrap());
    let values = bytes_f32(&input.bytes);
    let expected = computation::cpu::matmul(&values[..40 * 24], &values[40 * 24..], 40, 24, 56);
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(g, c)| (g - c).abs())
        .fold(0.0, f32::max);
    assert!(
        worst <= 1e-4 * 24.0,
        "differs from the CPU product by {worst}"
    );
    provider.interrupt().await;
}

#[test]
fn image_filter_blur_and_sobel_on_the_gpu_match_the_cpu_within_one_level() {
    let Some(gpu) = gpu() else { return };
    let sandbox = Sandbox::new(256 << 20, Some(gpu)).unwrap();
    let filter = catalog::load(&sandbox, &kernel("image-filter")).unwrap();
    // Odd sizes: partial workgroups at the right and bottom edges.
    let scene = image_filter::testdata::scene(97, 61, 8);
    let input = image_filter::testdata::png_payload(&scene);
    for params in [
        r#"{"filter":"gaussian_blur","sigma":2.0}"#,
        r#"{"filter":"gaussian_blur","sigma":0.7}"#,
        r#"{"filter":"sobel"}"#,
    ] {
        let decode = |device: &str| {
            let p = params.replace('}', &format!(r#","device":"{device}"}}"#));
            let report = sandbox.run(&filter.prepared, "image/png", &input.bytes, &p, &limits());
            let out = report.outcome.unwrap_or_else(|e| panic!("{p}: {e}"));
            image_filter::codec::decode_png(&out.bytes).unwrap()
        };
        let (on_gpu, on_cpu) = (decode("gpu"), decode("cpu"));
        assert_eq!(
            (on_gpu.width, on_gpu.height, on_gpu.layout),
            (on_cpu.width, on_cpu.height, on_cpu.layout)
        );
        let worst = on_gpu
            .pixels
            .iter()
            .zip(&on_cpu.pixels)
            .map(|(g, c)| g.abs_diff(*c))
            .max()
            .unwrap();
        assert!(worst <= 1, "{params}: GPU and CPU differ by {worst} levels");
        // And the CPU path in the sandbox is the native result.
        let native = image_filter::ImageFilter::run(
            input.clone(),
            &params.replace('}', r#","device":"cpu"}"#),
        )
        .unwrap();
        assert_eq!(
            image_filter::codec::decode_png(&native.bytes)
                .unwrap()
                .pixels,
            on_cpu.pixels
        );
    }
}

/// The object-detect kernel's GPU scan against its CPU path, twice: the
/// kernel in the sandbox (same boxes and labels, reported scores within one
/// unit of their 4th decimal) and the raw score maps (the kernel's shader
/// run through the host's GPU session against `detect::score_map`: the same
/// windows are digits, with the same labels, probabilities within
/// `SCORE_TOLERANCE`). Small pages: lavapipe is slow.
#[test]
fn object_detect_on_the_gpu_matches_the_cpu_path() {
    use greenmesh_provider::gpu::{GpuLimits, Session};
    use object_detect::detect::{grids, score_map, ScanSettings};
    use object_detect::features::InkIntegral;
    use object_detect::gpu::{
        decode_score_map, shader, u32_bytes, ScanJob, ENTRY_POINT, REPORTED_SCORE_TOLERANCE,
        SCORE_TOLERANCE,
    };
    use object_detect::model::Mlp;
    use serde_json::Value;

    let Some(gpu) = gpu() else { return };
    let sandbox = Sandbox::new(256 << 20, Some(gpu.clone())).unwrap();
    let detector = catalog::load(&sandbox, &kernel("object-detect")).unwrap();
    let mut scenes = vec![object_detect::testdata::sample_scene()];
    scenes.extend(object_detect::testdata::held_out_scenes(3));
    let variants = [
        "{}",
        r#"{"min_score":0.2,"window_sizes":[8,16,24,32,40],"stride":3}"#,
    ];
    let mut cases: Vec<_> = scenes
        .iter()
        .flat_map(|scene| variants.map(|params| (scene.payload(), params)))
        .collect();
    // Table and score map larger than the kernel's 1 MiB upload and
    // read-back chunks (a 641×481 table, 281,969 windows).
    let page = object_detect::testdata::page(640, 480, 16, 7).payload();
    cases.push((page, r#"{"window_sizes":[24],"stride":1}"#));

    // 1. The kernel, as a node runs it.
    let (mut compared, mut score_differs) = (0, 0);
    for (input, params) in &cases {
        let with = |device: &str| {
            let mut p: Value = serde_json::from_str(params).unwrap();
            p["device"] = device.into();
            let p = p.to_string();
            let report = sandbox.run(&detector.prepared, "image/png", &input.bytes, &p, &limits());
            report.outcome.unwrap_or_else(|e| panic!("{p}: {e}")).bytes
        };
        let (gpu_bytes, cpu_bytes) = (with("gpu"), with("cpu"));
        let boxes = |bytes: &[u8]| {
            let report: Value = serde_json::from_slice(bytes).unwrap();
            let mut boxes = report["bounding_boxes"].as_array().unwrap().clone();
            // Scores within the tolerance may order boxes differently.
            boxes.sort_by_key(|b| (b["y"].as_u64(), b["x"].as_u64(), b["width"].as_u64()));
            boxes
        };
        let (on_gpu, on_cpu) = (boxes(&gpu_bytes), boxes(&cpu_bytes));
        assert!(!on_cpu.is_empty(), "{params}: the scene has digits");
        assert_eq!(on_gpu.len(), on_cpu.len(), "{params}: box count");
        for (g, c) in on_gpu.iter().zip(&on_cpu) {
            for key in ["label", "x", "y", "width", "height"] {
                assert_eq!(g[key], c[key], "{params}: GPU {g} vs CPU {c}");
            }
            let gap = (g["score"].as_f64().unwrap() - c["score"].as_f64().unwrap()).abs();
            assert!(
                gap <= REPORTED_SCORE_TOLERANCE + 1e-9,
                "{params}: GPU {g} vs CPU {c}"
            );
            compared += 1;
            score_differs += usize::from(gap > 0.0);
        }
        // The CPU path in the sandbox is the native result, byte for byte.
        let mut native_params: Value = serde_json::from_str(params).unwrap();
        native_params["device"] = "cpu".into();
        let native =
            object_detect::ObjectDetect::run(input.clone(), &native_params.to_string()).unwrap();
        assert_eq!(native.bytes, cpu_bytes, "{params}");
    }

    // 2. The score maps themselves, window by window.
    let model = Mlp::embedded().unwrap();
    let mut session = Session::new(
        Some(gpu),
        GpuLimits {
            max_buffer_bytes: 64 << 20,
            max_dispatches: 16,
            deadline: std::time::Instant::now() + Duration::from_secs(300),
        },
    );
    let pipeline = session
        .create_pipeline(&shader(model.hidden), ENTRY_POINT)
        .unwrap();
    let (mut windows, mut digits, mut worst) = (0, 0, 0f32);
    for scene in &scenes {
        let integral = InkIntegral::from_gray(&scene.image);
        for settings in [
            ScanSettings {
                min_score: 0.0,
                nms_iou: 0.3,
                window_sizes: vec![16, 24, 32],
                stride: 4,
            },
            ScanSettings {
                min_score: 0.0,
                nms_iou: 0.3,
                window_sizes: vec![8, 40, 64],
                stride: 2,
            },
        ] {
            let (width, height) = (scene.image.width, scene.image.height);
            let g = grids(width, height, &settings);
            let job = ScanJob::new(&integral, &model, &settings, &g);
            let mut upload = |bytes: &[u8]| {
                let buffer = session.create_buffer(bytes.len() as u64).unwrap();
                session.write(&buffer, 0, bytes).unwrap();
                buffer
            };
            let table = upload(&u32_bytes(job.table));
            let weights = upload(&job.model);
            let scan = upload(&job.scan);
            let scores = session.create_buffer(job.score_map_bytes()).unwrap();
            session
                .dispatch(
                    &pipeline,
                    &[&table, &weights, &scores, &scan],
                    job.workgroups,
                )
                .unwrap();
            let on_gpu =
                decode_score_map(&session.read(&scores, 0, job.score_map_bytes()).unwrap());
            for buffer in [table, weights, scan, scores] {
                session.release(buffer);
            }
            let on_cpu = score_map(&integral, &model, &settings, &g);
            assert_eq!(on_gpu.len(), on_cpu.len());
            for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                match (g, c) {
                    (None, None) => {}
                    (Some((gl, gs)), Some((cl, cs))) if gl == cl => {
                        worst = worst.max((gs - cs).abs());
                        digits += 1;
                    }
                    _ => panic!("{width}×{height} {settings:?}: window {i} is {g:?} on the GPU, {c:?} on the CPU"),
                }
            }
            windows += on_cpu.len();
        }
    }
    eprintln!(
        "object-detect: {compared} boxes agree ({score_differs} reported scores differ); {windows} windows, {digits} digit windows, largest probability difference {worst:e}"
    );
    assert!(
        worst <= SCORE_TOLERANCE,
        "GPU and CPU probabilities differ by {worst}"
    );
}
