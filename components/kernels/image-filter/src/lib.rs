//! The `image-filter` kernel: grayscale, Gaussian blur, unsharp-mask sharpen
//! or Sobel edge magnitude of a PNG image, returned as a PNG.

mod blur;
pub mod codec;
mod gpu;
mod grayscale;
pub mod raster;
mod sharpen;
mod sobel;
pub mod testdata;

use greenmesh_kernel::gpu::Device;
use greenmesh_kernel::{expect_media_type, params, Description, Kernel, KernelError, Payload};
use serde::Deserialize;

/// The media type read and written.
pub const PNG: &str = "image/png";

/// The accepted range of the blur's σ, in pixels.
pub const SIGMA_RANGE: (f32, f32) = (0.1, 10.0);

/// The accepted range of the sharpening amount.
pub const AMOUNT_RANGE: (f32, f32) = (0.0, 5.0);

/// The kernel.
pub struct ImageFilter;

/// Which filter to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Rec. 709 luma; RGB becomes gray, RGBA gray+alpha.
    #[default]
    Grayscale,
    /// Separable Gaussian of standard deviation `sigma`.
    GaussianBlur,
    /// Unsharp mask: `x + amount · (x − blur_σ=1(x))`.
    Sharpen,
    /// 8-bit gray Sobel gradient magnitude of the luma.
    Sobel,
}

/// The task's parameters (`{}` means a grayscale conversion).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// The filter (default `grayscale`).
    pub filter: Filter,
    /// Blur σ in pixels; only with `gaussian_blur` (default 1.0).
    pub sigma: Option<f32>,
    /// Sharpening strength; only with `sharpen` (default 1.0).
    pub amount: Option<f32>,
    /// Where `gaussian_blur` and `sobel` run (default `auto`).
    pub device: Device,
}

impl Params {
    /// The blur's σ, checked against [`SIGMA_RANGE`].
    fn sigma(&self) -> Result<f32, KernelError> {
        in_range("sigma", self.sigma.unwrap_or(1.0), SIGMA_RANGE)
    }

    /// The sharpening amount, checked against [`AMOUNT_RANGE`].
    fn amount(&self) -> Result<f32, KernelError> {
        in_range("amount", self.amount.unwrap_or(1.0), AMOUNT_RANGE)
    }

    /// Refuses options given to a filter that does not use them.
    fn check_options_apply(&self) -> Result<(), KernelError> {
        let misplaced = match self.filter {
            Filter::GaussianBlur => self.amount.map(|_| "amount"),
            Filter::Sharpen => self.sigma.map(|_| "sigma"),
            Filter::Grayscale | Filter::Sobel => self
                .sigma
                .map(|_| "sigma")
                .or(self.amount.map(|_| "amount")),
        };
        match misplaced {
            Some(option) => Err(KernelError::InvalidParams(format!(
                "`{option}` does not apply to the {:?} filter",
                self.filter
            ))),
            None => Ok(()),
        }
    }
}

/// `value` if it lies in `low..=high`, else an error naming the option.
fn in_range(name: &str, value: f32, (low, high): (f32, f32)) -> Result<f32, KernelError> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(KernelError::InvalidParams(format!(
            "`{name}` is {value}; it must lie in {low}–{high}"
        )))
    }
}

impl Kernel for ImageFilter {
    fn describe() -> Description {
        Description {
            name: "image-filter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Grayscale, Gaussian blur, unsharp-mask sharpen or Sobel edges of a PNG (at most 4096×4096).".into(),
            input_types: vec![PNG.into()],
            output_types: vec![PNG.into()],
            params: r#"{"filter":{"default":"grayscale","doc":"grayscale (Rec. 709 luma), gaussian_blur, sharpen (unsharp mask) or sobel (8-bit gray gradient magnitude / 4)"},"sigma":{"default":1.0,"doc":"gaussian_blur only: standard deviation in pixels, 0.1-10; radius ceil(3 sigma), edges clamped"},"amount":{"default":1.0,"doc":"sharpen only: out = x + amount (x - blur_sigma=1(x)), 0-5"},"device":{"default":"auto","doc":"gaussian_blur and sobel: auto (GPU when the node has one), cpu or gpu"}}"#.into(),
            gpu: greenmesh_kernel::GpuUse::Optional,
        }
    }

    fn run(input: Payload, params_json: &str) -> Result<Payload, KernelError> {
        expect_media_type(&input, &[PNG])?;
        let params: Params = params(params_json)?;
        params.check_options_apply()?;
        let (sigma, amount) = (params.sigma()?, params.amount()?);
        let mut image = codec::decode_png(&input.bytes)?;
        let on_gpu = params.device.use_gpu();
        let output = match params.filter {
            Filter::Grayscale => grayscale::grayscale(image),
            Filter::GaussianBlur if on_gpu => {
                let kernel = blur::GaussianKernel::new(sigma);
                let channels = image.layout.colour_channels();
                let planes: Vec<Vec<f32>> = (0..channels).map(|c| image.plane(c)).collect();
                let blurred = gpu::blur_planes(&planes, image.width, image.height, &kernel)?;
                for (channel, plane) in blurred.iter().enumerate() {
                    image.store_plane(channel, plane);
                }
                image
            }
            Filter::GaussianBlur => {
                blur::gaussian_blur(&mut image, sigma);
                image
            }
            Filter::Sharpen => {
                sharpen::sharpen(&mut image, amount);
                image
            }
            Filter::Sobel if on_gpu => {
                let luma = grayscale::luma_plane(&image);
                let magnitude = gpu::sobel_magnitude(&luma, image.width, image.height)?;
                sobel::from_magnitude(image.width, image.height, &magnitude)
            }
            Filter::Sobel => sobel::sobel(&image),
        };
        Ok(Payload::new(PNG, codec::encode_png(&output)?))
    }
}

greenmesh_kernel::export_kernel!(ImageFilter);
