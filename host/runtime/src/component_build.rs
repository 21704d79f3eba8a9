//! `greenmesh up --build`: runs each component's `[component.<id>.build]`
//! command the way `spin build` does (through the shell, in `workdir` or
//! the manifest's folder), stopping at the first failure.

use crate::manifest::LoadedManifest;
use anyhow::{bail, Context};

/// Runs every build command in manifest order.
pub fn build_all(loaded: &LoadedManifest) -> anyhow::Result<()> {
    for (id, component) in &loaded.manifest.component {
        let Some(build) = &component.build else {
            continue;
        };
        let dir = match &build.workdir {
            Some(w) => loaded.resolve(w),
            None => loaded.dir.clone(),
        };
        for command in build.command.commands() {
            tracing::info!(component = %id, %command, dir = %dir.display(), "building");
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&dir)
                .status()
                .with_context(|| format!("running build command of component `{id}`"))?;
            if !status.success() {
                bail!("build command of component `{id}` failed ({status}): {command}");
            }
        }
    }
    Ok(())
}
