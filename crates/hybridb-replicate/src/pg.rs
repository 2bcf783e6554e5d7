//! The PostgreSQL + pgvector target, single node or a Citus coordinator.
//!
//! Layout in the target database (schema `S`, `hybridb` by default):
//! - `S."<collection>"`: one table per collection, `(id uuid primary key, version bigint,
//!   updated_at timestamptz, payload jsonb, embedding vector(dim))`, with an HNSW index on
//!   `embedding` by the collection's metric and, when the collection declares payload indexes,
//!   a GIN `jsonb_path_ops` index on `payload` (it serves the `@?` predicates the query
//!   translation writes) plus one expression index per declared field. With Citus the table
//!   is distributed by `id` (`create_distributed_table`), and the indexes reach every shard.
//! - `S_sink.cursor`: each sink's applied sequence number and initial-copy progress, written in
//!   the same transaction as each batch (a coordinator-local table under Citus).
//! - `S_sink.collections`: each replicated collection's dimension, metric and payload
//!   indexes (what [`crate::query`] needs to translate a search).
//!
//! Upserts go through binary `COPY` into a temporary staging table, then one
//! `INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE ... WHERE version < excluded.version`.
//! Pages of the initial copy ([`Op::Load`]) are `COPY`ed straight into the table, which has
//! no indexes but its primary key until [`Target::finish_copy`]; a page meeting an id that
//! is there already (a unique violation) is rolled back to a savepoint and upserted instead.

use std::pin::pin;
use std::time::{Duration, SystemTime};

use hybridb::Metric;
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, Kind, ToSql, Type};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::source::CollectionSpec;
use crate::target::{Batch, Cursor, Op, Row, Target};

/// How the target's tables are laid out across nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// Distribute by entity id when the target has the `citus` extension, else plain tables.
    #[default]
    Auto,
    /// Plain tables, even on a Citus coordinator.
    Local,
    /// `create_distributed_table(..., 'id')`; fails on a target without Citus.
    ById,
}

/// Settings of a [`PgTarget`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db` (libpq key-value strings work too).
    pub url: String,
    /// Schema of the collection tables (`S`); the sink's own tables go in `S_sink`.
    pub schema: String,
    /// Table layout.
    pub distribution: Distribution,
}

impl PgOptions {
    /// Default settings for `url`: schema `hybridb`, Citus distribution when available.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            schema: "hybridb".into(),
            distribution: Distribution::Auto,
        }
    }
}

/// PostgreSQL + pgvector (and Citus) as a replication [`Target`].
pub struct PgTarget {
    opts: PgOptions,
    client: Option<Client>,
    vector_type: Option<Type>,
    distributed: bool,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("schema", &self.opts.schema)
            .field("distributed", &self.distributed)
            .finish_non_exhaustive()
    }
}

/// Quotes an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// PostgreSQL's identifier limit (longer names are cut silently, so they are refused).
const MAX_IDENT: usize = 63;

/// The pgvector operator class for a metric.
pub(crate) fn opclass(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "vector_cosine_ops",
        Metric::Dot => "vector_ip_ops",
        _ => "vector_l2_ops",
    }
}

/// The metric's name as the sink stores it.
pub(crate) fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "cosine",
        Metric::Dot => "dot",
        _ => "l2",
    }
}

/// Connects to `url` and spawns the connection's task.
pub(crate) async fn connect(url: &str) -> Result<Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| Error::TargetUrl(e.to_string()))?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "target connection ended");
        }
    });
    Ok(client)
}

/// A short, stable suffix for index names derived from a collection name.
fn index_name(collection: &str, what: &str) -> String {
    let mut h: u32 = 2_166_136_261;
    for b in collection.bytes().chain(what.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    let short: String = collection.chars().take(32).collect();
    format!("{short}_{}_{h:08x}", &what[..what.len().min(12)])
}

/// Whether a JSON value holds a NUL character (PostgreSQL's `jsonb` refuses it).
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// `payload #>> '{a,b}'` for a dotted key.
pub(crate) fn text_path(key: &str) -> String {
    let parts: Vec<String> = key
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!(
        "(payload #>> {})",
        literal(&format!("{{{}}}", parts.join(",")))
    )
}

impl PgTarget {
    /// A target with `opts`; nothing happens until [`Target::connect`].
    pub fn new(opts: PgOptions) -> Self {
        PgTarget {
            opts,
            client: None,
            vector_type: None,
            distributed: false,
        }
    }

    /// Whether the tables are distributed by Citus (known after connecting).
    pub fn is_distributed(&self) -> bool {
        self.distributed
    }

    fn client(&mut self) -> Result<&mut Client> {
        self.client
            .as_mut()
            .ok_or_else(|| Error::TargetSchema("not connected".into()))
    }

    fn table(&self, collection: &str) -> String {
        format!("{}.{}", ident(&self.opts.schema), ident(collection))
    }

    fn meta(&self, table: &str) -> String {
        format!("{}.{}", ident(&format!("{}_sink", self.opts.schema)), table)
    }

    /// Statements that create a collection's table (without its vector and payload indexes
    /// unless asked).
    fn create_statements(&self, spec: &CollectionSpec, indexes: bool) -> Result<Vec<String>> {
        if spec.name.len() > MAX_IDENT {
            return Err(Error::UnsupportedCollection {
                collection: spec.name.clone(),
                reason: format!("names longer than {MAX_IDENT} bytes do not fit PostgreSQL"),
            });
        }
        let t = self.table(&spec.name);
        let mut out = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (id uuid PRIMARY KEY, version bigint NOT NULL, \
                 updated_at timestamptz NOT NULL, payload jsonb NOT NULL, \
                 embedding vector({}) NOT NULL, vectors jsonb)",
                spec.dim
            ),
            // Tables made before named vectors were carried.
            format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS vectors jsonb"),
        ];
        if self.distributed {
            out.push(format!(
                "SELECT create_distributed_table({}, 'id') WHERE NOT EXISTS \
                 (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = {}::regclass)",
                literal(&t),
                literal(&t)
            ));
        }
        if indexes {
            out.push(self.vector_index_statement(spec));
        }
        if indexes && !spec.payload_indexes.is_empty() {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} USING gin (payload jsonb_path_ops)",
                ident(&index_name(&spec.name, "gin"))
            ));
        }
        for (field, kind) in spec.payload_indexes.iter().filter(|_| indexes) {
            let path = text_path(field);
            let expr = match kind.as_str() {
                "integer" | "float" => format!(
                    "(CASE WHEN jsonb_typeof(payload #> {p}) = 'number' THEN ({path})::numeric END)",
                    p = literal(&format!(
                        "{{{}}}",
                        field
                            .split('.')
                            .map(|s| format!("\"{}\"", s.replace('"', "\\\"")))
                            .collect::<Vec<_>>()
                            .join(",")
                    ))
                ),
                _ => path,
            };
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} (({expr}))",
                ident(&index_name(&spec.name, &format!("f_{field}")))
            ));
        }
        let indexes: Value = spec
            .payload_indexes
            .iter()
            .map(|(f, k)| (f.clone(), Value::String(k.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        out.push(format!(
            "INSERT INTO {} (name, dim, metric, payload_indexes) VALUES ({}, {}, {}, {}::jsonb) \
             ON CONFLICT (name) DO UPDATE SET dim = excluded.dim, metric = excluded.metric, \
             payload_indexes = excluded.payload_indexes",
            self.meta("collections"),
            literal(&spec.name),
            spec.dim,
            literal(metric_name(spec.metric)),
            literal(&indexes.to_string())
        ));
        Ok(out)
    }

    fn vector_index_statement(&self, spec: &CollectionSpec) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {})",
            ident(&index_name(&spec.name, "hnsw")),
            self.table(&spec.name),
            opclass(spec.metric)
        )
    }

    /// Refuses rows whose payload PostgreSQL's `jsonb` cannot hold.
    fn check_rows(collection: &str, rows: &[Row]) -> Result<()> {
        for r in rows {
            if r.payload
                .iter()
                .any(|(k, v)| k.contains('\0') || has_nul(v))
            {
                return Err(Error::UnsupportedPayload {
                    collection: collection.to_string(),
                    id: r.id,
                    reason: "the payload holds a NUL character, which PostgreSQL's jsonb refuses"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Binary `COPY` of `rows` into `dest` (a table name, quoted).
    async fn copy_rows(&mut self, dest: &str, rows: &[Row]) -> Result<()> {
        let vector_type = self
            .vector_type
            .clone()
            .ok_or_else(|| Error::TargetSchema("pgvector type not looked up".into()))?;
        let client = self.client()?;
        let sink = client
            .copy_in(&format!(
                "COPY {dest} (id, version, updated_at, payload, embedding, vectors) \
                 FROM STDIN BINARY"
            ))
            .await?;
        let types = [
            Type::UUID,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::JSONB,
            vector_type,
            Type::JSONB,
        ];
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for r in rows {
            let version = i64::try_from(r.version).unwrap_or(i64::MAX);
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(r.updated_at);
            let payload = Json(&r.payload);
            let vector = pgvector::Vector::from(r.vector.clone());
            let vectors = r.vectors.as_ref().map(Json);
            let values: [&(dyn ToSql + Sync); 6] =
                [&r.id, &version, &at, &payload, &vector, &vectors];
            writer.as_mut().write(&values).await?;
        }
        writer.as_mut().finish().await?;
        Ok(())
    }

    /// Rows of the initial copy: `COPY` straight into the table, or, if one of the ids is
    /// there already, the version-ordered upsert.
    async fn load(&mut self, collection: &str, rows: &[Row]) -> Result<()> {
        Self::check_rows(collection, rows)?;
        let table = self.table(collection);
        self.client()?
            .batch_execute("SAVEPOINT hybridb_load")
            .await?;
        match self.copy_rows(&table, rows).await {
            Ok(()) => {
                self.client()?
                    .batch_execute("RELEASE SAVEPOINT hybridb_load")
                    .await?;
                Ok(())
            }
            Err(Error::Target(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                tracing::debug!(collection, "a copied id is in the table already: upserting");
                self.client()?
                    .batch_execute("ROLLBACK TO SAVEPOINT hybridb_load")
                    .await?;
                self.upsert(collection, rows).await
            }
            Err(e) => Err(e),
        }
    }

    /// Version-ordered upsert: `COPY` into the staging table, then `INSERT ... ON CONFLICT`.
    async fn upsert(&mut self, collection: &str, rows: &[Row]) -> Result<()> {
        Self::check_rows(collection, rows)?;
        let table = self.table(collection);
        self.client()?
            .batch_execute("TRUNCATE pg_temp.hybridb_stage")
            .await?;
        self.copy_rows("pg_temp.hybridb_stage", rows).await?;
        self.client()?
            .batch_execute(&format!(
                "INSERT INTO {table} AS t (id, version, updated_at, payload, embedding, vectors) \
                 SELECT id, version, updated_at, payload, embedding, vectors \
                 FROM pg_temp.hybridb_stage \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
                 updated_at = excluded.updated_at, payload = excluded.payload, \
                 embedding = excluded.embedding, vectors = excluded.vectors \
                 WHERE t.version < excluded.version"
            ))
            .await?;
        Ok(())
    }
}

impl Target for PgTarget {
    async fn connect(&mut self) -> Result<()> {
        self.client = None;
        let mut client = connect(&self.opts.url).await?;
        let schema = ident(&self.opts.schema);
        let meta = ident(&format!("{}_sink", self.opts.schema));
        let has_citus = client
            .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
            .await?
            .is_some();
        self.distributed = match self.opts.distribution {
            Distribution::Auto => has_citus,
            Distribution::Local => false,
            Distribution::ById => {
                if !has_citus {
                    return Err(Error::TargetSchema(
                        "distribution by id needs the citus extension on the target".into(),
                    ));
                }
                true
            }
        };
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE SCHEMA IF NOT EXISTS {meta};
             CREATE TABLE IF NOT EXISTS {meta}.cursor (name text PRIMARY KEY, applied bigint,
                 snapshot_seq bigint, copied text[] NOT NULL DEFAULT '{{}}',
                 copy_collection text, copy_after uuid, updated_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {meta}.collections (name text PRIMARY KEY, dim int NOT NULL,
                 metric text NOT NULL, payload_indexes jsonb NOT NULL DEFAULT '{{}}');"
        ))
        .await?;
        tx.commit().await?;
        client
            .batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS hybridb_stage (id uuid, version bigint, \
                 updated_at timestamptz, payload jsonb, embedding vector, vectors jsonb)",
            )
            .await?;
        let row = client
            .query_one(
                "SELECT t.oid, n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 WHERE t.typname = 'vector'",
                &[],
            )
            .await?;
        let oid: u32 = row.get(0);
        let nsp: String = row.get(1);
        self.vector_type = Some(Type::new("vector".into(), oid, Kind::Simple, nsp));
        self.client = Some(client);
        Ok(())
    }

    async fn cursor(&mut self, name: &str) -> Result<Cursor> {
        let sql = format!(
            "SELECT applied, snapshot_seq, copied, copy_collection, copy_after FROM {} WHERE name = $1",
            self.meta("cursor")
        );
        let client = self.client()?;
        let Some(row) = client.query_opt(&sql, &[&name]).await? else {
            return Ok(Cursor::default());
        };
        let applied: Option<i64> = row.get(0);
        let snapshot: Option<i64> = row.get(1);
        let copied: Vec<String> = row.get(2);
        let coll: Option<String> = row.get(3);
        let after: Option<Uuid> = row.get(4);
        Ok(Cursor {
            applied: applied.map(|a| a as u64),
            snapshot_seq: snapshot.map(|s| s as u64),
            copied,
            copy_after: coll.zip(after),
        })
    }

    async fn apply(&mut self, name: &str, batch: &Batch, cursor: &Cursor) -> Result<()> {
        let client = self.client()?;
        client.batch_execute("BEGIN").await?;
        let result = self.apply_in_transaction(name, batch, cursor).await;
        let client = self.client()?;
        match result {
            Ok(()) => {
                client.batch_execute("COMMIT").await?;
                Ok(())
            }
            Err(e) => {
                // A failed rollback leaves a broken connection: the next connect replaces it.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn finish_copy(&mut self) -> Result<()> {
        let sql = format!(
            "SELECT name, dim, metric, payload_indexes FROM {}",
            self.meta("collections")
        );
        let rows = self.client()?.query(&sql, &[]).await?;
        for row in rows {
            let name: String = row.get(0);
            let dim: i32 = row.get(1);
            let metric: String = row.get(2);
            let indexes: Value = row.get(3);
            let payload_indexes = crate::source::payload_indexes_of(Some(&indexes));
            let spec = CollectionSpec {
                name,
                dim: dim as u32,
                metric: match metric.as_str() {
                    "cosine" => Metric::Cosine,
                    "dot" => Metric::Dot,
                    _ => Metric::L2,
                },
                payload_indexes,
                count: None,
            };
            for stmt in self.create_statements(&spec, true)? {
                self.client()?.batch_execute(&stmt).await?;
            }
        }
        Ok(())
    }

    async fn collections(&mut self) -> Result<Vec<(String, u32)>> {
        let sql = format!("SELECT name, dim FROM {}", self.meta("collections"));
        let rows = self.client()?.query(&sql, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1) as u32))
            .collect())
    }

    async fn reset(&mut self, name: &str) -> Result<()> {
        let sql = format!("SELECT name FROM {}", self.meta("collections"));
        let rows = self.client()?.query(&sql, &[]).await?;
        let mut stmts = Vec::new();
        for row in rows {
            let c: String = row.get(0);
            stmts.push(format!("DROP TABLE IF EXISTS {}", self.table(&c)));
        }
        stmts.push(format!("DELETE FROM {}", self.meta("collections")));
        stmts.push(format!(
            "DELETE FROM {} WHERE name = {}",
            self.meta("cursor"),
            literal(name)
        ));
        self.client()?.batch_execute(&stmts.join(";\n")).await?;
        Ok(())
    }
}

impl PgTarget {
    async fn apply_in_transaction(
        &mut self,
        name: &str,
        batch: &Batch,
        cursor: &Cursor,
    ) -> Result<()> {
        for op in &batch.ops {
            match op {
                Op::CreateCollection { spec, indexes } => {
                    let existing = self.existing_dim(&spec.name).await?;
                    if let Some(dim) = existing
                        && dim != spec.dim
                    {
                        // The table is of an earlier collection of that name whose drop event
                        // is still ahead: a drop comes before the new one's creation.
                        let drop = format!("DROP TABLE IF EXISTS {}", self.table(&spec.name));
                        self.client()?.batch_execute(&drop).await?;
                    }
                    let stmts = self.create_statements(spec, *indexes)?;
                    for s in stmts {
                        self.client()?.batch_execute(&s).await?;
                    }
                }
                Op::DropCollection(c) => {
                    let stmts = format!(
                        "DROP TABLE IF EXISTS {}; DELETE FROM {} WHERE name = {}",
                        self.table(c),
                        self.meta("collections"),
                        literal(c)
                    );
                    self.client()?.batch_execute(&stmts).await?;
                }
                Op::Delete { collection, ids } => {
                    let sql = format!("DELETE FROM {} WHERE id = ANY($1)", self.table(collection));
                    self.client()?.execute(&sql, &[ids]).await?;
                }
                Op::Upsert { collection, rows } => {
                    if !rows.is_empty() {
                        self.upsert(collection, rows).await?;
                    }
                }
                Op::Load { collection, rows } => {
                    if !rows.is_empty() {
                        self.load(collection, rows).await?;
                    }
                }
            }
        }
        let (coll, after) = match &cursor.copy_after {
            Some((c, a)) => (Some(c.clone()), Some(*a)),
            None => (None, None),
        };
        let applied = cursor.applied.map(|a| a as i64);
        let snapshot = cursor.snapshot_seq.map(|s| s as i64);
        let sql = format!(
            "INSERT INTO {} (name, applied, snapshot_seq, copied, copy_collection, copy_after, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (name) DO UPDATE SET \
             applied = excluded.applied, snapshot_seq = excluded.snapshot_seq, copied = excluded.copied, \
             copy_collection = excluded.copy_collection, copy_after = excluded.copy_after, updated_at = now()",
            self.meta("cursor")
        );
        self.client()?
            .execute(
                &sql,
                &[&name, &applied, &snapshot, &cursor.copied, &coll, &after],
            )
            .await?;
        Ok(())
    }

    /// The dimension of the collection's table, if the sink created one.
    async fn existing_dim(&mut self, collection: &str) -> Result<Option<u32>> {
        let sql = format!(
            "SELECT dim FROM {} WHERE name = $1",
            self.meta("collections")
        );
        let row = self.client()?.query_opt(&sql, &[&collection]).await?;
        Ok(row.map(|r| r.get::<_, i32>(0) as u32))
    }
}
