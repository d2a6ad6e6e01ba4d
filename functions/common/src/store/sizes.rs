//! A table's size as DynamoDB reports it (`DescribeTable`: item count and bytes, which
//! DynamoDB refreshes about every six hours), for the daily table report.

use aws_sdk_dynamodb::Client;

use super::dynamo::sdk_error;
use crate::error::ServiceError;

/// One table's figures.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TableSize {
    pub table: String,
    pub item_count: i64,
    pub size_bytes: i64,
}

/// Reads the size of the tables. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TableSizes {
    client: Client,
}

impl TableSizes {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `table`'s figures as DynamoDB last computed them (a table that reports none counts 0).
    pub async fn of(&self, table: &str) -> Result<TableSize, ServiceError> {
        let output = self
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("describe table", e))?;
        let description = output.table.as_ref();
        Ok(TableSize {
            table: table.to_owned(),
            item_count: description.and_then(|d| d.item_count).unwrap_or(0),
            size_bytes: description.and_then(|d| d.table_size_bytes).unwrap_or(0),
        })
    }
}
