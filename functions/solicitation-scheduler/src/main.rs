//! Lambda entry point of `solicitation-scheduler`: the daily schedule fans out, the planning
//! queue plans one merchant.

use ecomdrive_aws::{Queue, Store};
use ecomdrive_runtime::{env, lambda, logging};
use solicitation_scheduler::Scheduler;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda::Error> {
    logging::init_tracing();
    let sdk = aws_config::load_from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let scheduler = Arc::new(Scheduler {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            env::required("TABLE_NAME")?,
        ),
        plan_queue: Queue::new(sqs.clone(), env::required("SOLICITATION_PLAN_QUEUE_URL")?),
        solicitations: Queue::new(sqs, env::required("SOLICITATIONS_QUEUE_URL")?),
    });
    let on_schedule = scheduler.clone();
    lambda::run_sqs_or_schedule(
        move |record| {
            let scheduler = scheduler.clone();
            async move { scheduler.handle_record(record).await }
        },
        move || {
            let scheduler = on_schedule.clone();
            async move { scheduler.fan_out().await.map(|_| ()) }
        },
    )
    .await
}
