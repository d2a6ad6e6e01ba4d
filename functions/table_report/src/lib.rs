//! The `table_report` Lambda function: once a day (its schedule), the item count and size of
//! each of the service's tables as CloudWatch metrics (`service_common::metrics::table_line`,
//! namespace `ProdService`, dimension `Table`), which gives the team the trend of the data and
//! a figure to alarm on. DynamoDB refreshes the figures about every six hours, so a daily
//! report loses nothing, and it costs one `DescribeTable` per table.
//!
//! The figures are also the invocation's result, so `cargo xtask invoke` shows them.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use service_common::store::{TableSize, TableSizes};
use service_common::{Clients, Config, FunctionState, ServiceError};

/// What `table_report` builds once per process: the tables' names and their size reader.
#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    pub sizes: TableSizes,
}

impl FunctionState for State {
    fn new(config: Config, clients: Clients) -> Self {
        Self {
            sizes: TableSizes::new(clients.dynamo),
            config,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// The report: every table's figures, in the order of the metrics lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub tables: Vec<TableSize>,
}

/// Reports every table. The schedule's event carries no input (`detail` is `{}`); its time is
/// logged so a report can be matched to the schedule's invocation. A table that cannot be read
/// fails the invocation (Lambda retries an asynchronous one twice) after the others reported.
pub async fn handle(
    state: &State,
    request_id: &str,
    event: EventBridgeEvent,
) -> Result<Report, ServiceError> {
    let scheduled = event.time.map(|time| time.to_rfc3339()).unwrap_or_default();
    let mut report = Report { tables: Vec::new() };
    let mut failed = None;
    for table in [&state.config.users_table, &state.config.sessions_table] {
        match state.sizes.of(table).await {
            Ok(size) => {
                service_common::metrics::write_table(
                    request_id,
                    &size.table,
                    size.item_count,
                    size.size_bytes,
                );
                report.tables.push(size);
            }
            Err(error) => {
                let message = service_common::logging::error_chain(&error);
                tracing::error!(table, error = %message, "table not reported");
                failed = Some(error);
            }
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    tracing::info!(scheduled, tables = report.tables.len(), "tables reported");
    Ok(report)
}
