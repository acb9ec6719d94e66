//! `local-stack`: the whole system on this machine, in the foreground until Ctrl-C.
//! Started by `infra/scripts/up.sh` (the README's first command), which installs what it needs first.

use ecomdrive_local::emulator::{Emulator, sdk_config};
use ecomdrive_local::provision::repo_root;
use ecomdrive_local::stack::{
    DEFAULT_APP_SECRET, DEFAULT_VERIFY_TOKEN, RunningStack, StackOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ecomdrive_runtime::logging::init_tracing();
    let port: u16 = std::env::var("ECOMDRIVE_PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()
        .map_err(|_| "ECOMDRIVE_PORT must be a port number")?
        .unwrap_or(3000);
    let mut options = StackOptions::new("local");
    options.port = port;
    options.app_secret =
        std::env::var("META_APP_SECRET").unwrap_or_else(|_| DEFAULT_APP_SECRET.into());
    options.verify_token =
        std::env::var("META_VERIFY_TOKEN").unwrap_or_else(|_| DEFAULT_VERIFY_TOKEN.into());

    let emulator = Emulator::start(&repo_root())?;
    let sdk = sdk_config(&emulator.endpoint).await;
    let stack = RunningStack::start(&sdk, options).await?;
    println!("EcomDrive local stack ready at {}", stack.base_url);
    println!(
        "  AWS emulator: {}   Meta sandbox: {}",
        emulator.endpoint,
        stack.sandbox.base_url().unwrap_or_default()
    );

    tokio::signal::ctrl_c().await?;
    println!("stopping");
    stack.stop().await;
    drop(emulator);
    Ok(())
}
