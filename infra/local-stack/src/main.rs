//! `local-stack`: the whole system on this machine, in the foreground until Ctrl-C.
//! Started by `infra/scripts/up.sh` (the README's first command), which installs what it needs first.

use ecomdrive_local::emulator::{Emulator, sdk_config};
use ecomdrive_local::provision::repo_root;
use ecomdrive_local::stack::{
    DEFAULT_APP_SECRET, DEFAULT_VERIFY_TOKEN, RunningStack, StackOptions,
};

const DEMO_OWNER: &str = "demo-owner@ecomdrive.local";

/// A demo merchant, so a person can sign in and look around at once.
async fn seed_demo_merchant(stack: &RunningStack) -> Result<String, Box<dyn std::error::Error>> {
    let user = ecomdrive_core::ids::UserId::parse(&stack.idp.sub_for(DEMO_OWNER))
        .ok_or("bad demo user id")?;
    let user = stack.store.user_seen(&user, Some(DEMO_OWNER)).await?;
    let profile = ecomdrive_core::merchant::MerchantProfile::validate(
        "Demo Merchant",
        None,
        Some("27AAPFU0939F1ZV"),
    )
    .map_err(|_| "demo profile is invalid")?;
    Ok(stack
        .store
        .create_merchant(&user, profile)
        .await?
        .id
        .to_string())
}

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
    // template.yaml's ratio (replies visibility 180 s > echo wait 120 s), scaled down so a person
    // sees a timed-out reply settle within seconds: every redelivery comes after the echo wait.
    options.echo_wait = std::time::Duration::from_secs(3);
    options.retry_after = std::time::Duration::from_secs(5);
    options.app_secret =
        std::env::var("META_APP_SECRET").unwrap_or_else(|_| DEFAULT_APP_SECRET.into());
    options.verify_token =
        std::env::var("META_VERIFY_TOKEN").unwrap_or_else(|_| DEFAULT_VERIFY_TOKEN.into());

    let emulator = Emulator::start(&repo_root())?;
    let sdk = sdk_config(&emulator.endpoint).await;
    let stack = RunningStack::start(&sdk, options).await?;
    let demo = seed_demo_merchant(&stack).await?;
    println!("EcomDrive local stack ready at {}", stack.base_url);
    println!(
        "  demo merchant {demo} owned by {DEMO_OWNER} (POST /_local/login {{\"email\": \"{DEMO_OWNER}\"}})"
    );
    println!(
        "  AWS emulator: {}   Meta sandbox: {}",
        emulator.endpoint,
        stack.sandbox.base_url().unwrap_or_default()
    );
    println!(
        "  Amazon sandbox: demo seller {} (connect: POST /v1/merchants/{demo}/integrations/amazon/connect, open the authorize_url)",
        amazon_sandbox::DEMO_SELLER_ID
    );

    wait_for_stop().await?;
    println!("stopping");
    stack.stop().await;
    drop(emulator);
    Ok(())
}

/// Ctrl-C in a terminal, SIGTERM from a process manager: either stops what we started.
async fn wait_for_stop() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
