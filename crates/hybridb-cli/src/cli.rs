//! The command line, as clap types.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// hybridb: entities (JSON payload + vector under one id) with vector search, in one file.
#[derive(Debug, Parser)]
#[command(name = "hybridb", version, about)]
pub struct Args {
    /// Data folder; the database file is DATA/hybridb.redb.
    #[arg(long, global = true, default_value = "hybridb-data")]
    pub data: PathBuf,
    /// Print one JSON document (for scripts) instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (API keys from HYBRIDB_API_KEY and HYBRIDB_READ_API_KEY).
    Serve(ServeArgs),
    /// List, create or drop collections.
    #[command(subcommand)]
    Collections(CollectionsCmd),
    /// List, set or delete collection aliases (a name that resolves to a collection).
    #[command(subcommand)]
    Aliases(AliasesCmd),
    /// Import entities from JSON lines ({id?, key?, payload?, vector}) or .fvecs/.bvecs.
    Import(ImportArgs),
    /// Export a collection as JSON lines ({id, payload, vector, version, updated_at}).
    Export(ExportArgs),
    /// Nearest entities to a vector.
    Search(SearchArgs),
    /// Run a query (prefetch, fusion, rescoring, MMR): the JSON body of `POST .../query`.
    Query(QueryArgs),
    /// One entity by id.
    Get {
        /// Collection.
        collection: String,
        /// Entity id (UUID).
        id: String,
    },
    /// Write a consistent backup of the database to a new file.
    Backup {
        /// The backup file to create (must not exist).
        path: PathBuf,
    },
    /// Replace the database with a backup, then verify it.
    Restore {
        /// A file made by `hybridb backup`.
        backup: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Check the integrity of everything stored and derived (exit status 2 on problems).
    Verify {
        /// Rebuild the in-memory indexes from the tables first.
        #[arg(long)]
        repair: bool,
    },
    /// Compact the file, returning free space to the file system.
    Compact,
    /// Collections, counts and sequence numbers.
    Stats,
    /// Replicate a running server's database into PostgreSQL + pgvector (or a Citus
    /// coordinator): an initial copy, then its change feed, until stopped (SIGTERM, Ctrl-C).
    /// The server's key comes from HYBRIDB_REPLICATE_API_KEY, else the first of
    /// HYBRIDB_READ_API_KEY or HYBRIDB_API_KEY.
    Replicate(ReplicateArgs),
}

/// `hybridb replicate` (and the sink settings of `serve --replicate-to`).
#[derive(Debug, clap::Args)]
pub struct ReplicateArgs {
    /// The hybridb server to read (its change feed and entities).
    #[arg(long, default_value = "http://127.0.0.1:7411")]
    pub from: String,
    /// The target: a postgres:// URL of PostgreSQL with pgvector, or of a Citus coordinator.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub sink: SinkArgs,
}

/// Settings of the replication sink.
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// Replicate only these collections (comma-separated; default all). Changing the set
    /// later needs --resync.
    #[arg(long, value_delimiter = ',')]
    pub collections: Option<Vec<String>>,
    /// Schema of the collection tables in the target (the sink's own go in SCHEMA_sink).
    #[arg(long, default_value = "hybridb")]
    pub schema: String,
    /// Name of this sink's cursor in the target.
    #[arg(long, default_value = "default")]
    pub sink_name: String,
    /// Table layout: auto (distributed by id on Citus), local, or id.
    #[arg(long, value_enum, default_value = "auto")]
    pub distribution: DistributionArg,
    /// Most change events per target transaction.
    #[arg(long, default_value_t = 5000)]
    pub batch_events: usize,
    /// Entities per page of the initial copy.
    #[arg(long, default_value_t = 2000)]
    pub copy_page: usize,
    /// Drop what the target holds for this sink and copy a fresh snapshot.
    #[arg(long)]
    pub resync: bool,
}

/// Table layouts in the target.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DistributionArg {
    /// Distributed by entity id when the target has Citus.
    Auto,
    /// Plain tables.
    Local,
    /// Distributed by entity id (fails without Citus).
    Id,
}

/// `hybridb serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 7411)]
    pub port: u16,
    /// Port of the Qdrant-compatible API, on the same address (0: off). It is also served
    /// under `/qdrant` on the main port.
    #[arg(long, default_value_t = 6333)]
    pub qdrant_port: u16,
    /// Folder for `POST /backup` (default DATA/backups).
    #[arg(long)]
    pub backup_dir: Option<PathBuf>,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_body_mib: usize,
    /// Time limit per request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Requests handled at once.
    #[arg(long, default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Also replicate the database into this PostgreSQL + pgvector (or Citus) target, through
    /// this server's own change feed (see `hybridb replicate`).
    #[arg(long, value_name = "POSTGRES_URL")]
    pub replicate_to: Option<String>,
    #[command(flatten)]
    pub sink: SinkArgs,
}

/// `hybridb collections ...`.
#[derive(Debug, Subcommand)]
pub enum CollectionsCmd {
    /// All collections.
    List,
    /// Create a collection.
    Create(CreateArgs),
    /// Drop a collection and all its entities.
    Drop {
        /// Collection.
        name: String,
    },
    /// Change a dense vector's quantization online (trains the codes now; the same setting
    /// retrains them; `none` drops them).
    Quantize {
        /// Collection.
        name: String,
        /// The codes: auto, none, sq8, rq1, rq2 or rq4.
        #[arg(value_parser = quantization_arg)]
        quantization: hybridb::Quantization,
        /// A named dense vector (default: the collection's default vector).
        #[arg(long, default_value = "")]
        vector: String,
    },
}

/// Parses a quantization as the collection config's JSON names it (`docs/quantization.md`).
fn quantization_arg(s: &str) -> Result<hybridb::Quantization, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("expected auto, none, sq8, rq1, rq2 or rq4, got {s:?}"))
}

/// `hybridb aliases ...`.
#[derive(Debug, Subcommand)]
pub enum AliasesCmd {
    /// All aliases and their collections.
    List,
    /// Point an alias at a collection (creating it, or repointing it atomically).
    Set {
        /// The alias.
        alias: String,
        /// The collection it resolves to.
        collection: String,
    },
    /// Delete an alias (the collection stays).
    Delete {
        /// The alias.
        alias: String,
    },
}

/// Metric names.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricArg {
    /// Cosine similarity.
    Cosine,
    /// Inner product.
    Dot,
    /// Euclidean distance.
    L2,
    /// Manhattan (L1) distance.
    Manhattan,
}

/// Index kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IndexArg {
    /// HNSW graph (approximate).
    Hnsw,
    /// Exact search.
    Exact,
}

/// `hybridb collections create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Collection name.
    pub name: String,
    /// Dimension of the default vector; 0: no default vector (declare named ones with
    /// --vector).
    #[arg(long, default_value_t = 0)]
    pub dim: u32,
    /// Metric.
    #[arg(long, value_enum, default_value = "cosine")]
    pub metric: MetricArg,
    /// Index kind.
    #[arg(long, value_enum, default_value = "hnsw")]
    pub index: IndexArg,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    pub m: u32,
    /// HNSW candidate list size while inserting.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: u32,
    /// HNSW default search candidate list size.
    #[arg(long, default_value_t = 64)]
    pub ef: u32,
    /// Codes the default vector's HNSW walk ranks by: auto (rq4 from 384 dimensions on an
    /// HNSW index under cosine, dot or L2, else none), none, sq8, rq1, rq2 or rq4.
    #[arg(long, value_parser = quantization_arg, default_value = "auto")]
    pub quantization: hybridb::Quantization,
    /// Declared payload index, FIELD=KIND (keyword, integer, float, bool, datetime); repeatable.
    #[arg(long = "payload-index", value_name = "FIELD=KIND")]
    pub payload_indexes: Vec<String>,
    /// A named vector, NAME=dense:DIM[:METRIC] (HNSW index), NAME=sparse[:idf], or NAME=JSON
    /// (the HTTP API's vector spec, e.g. '{"type":"dense","dim":3,"index":{"kind":"exact"}}');
    /// repeatable.
    #[arg(long = "vector", value_name = "NAME=SPEC")]
    pub vectors: Vec<String>,
}

/// `hybridb import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Collection to write into.
    pub collection: String,
    /// Input: JSON lines, or a .fvecs/.bvecs file.
    pub file: PathBuf,
    /// For .fvecs/.bvecs: JSON lines with one payload object per vector, in the same order.
    #[arg(long)]
    pub payloads: Option<PathBuf>,
    /// For .fvecs/.bvecs: entity ids are derived from the key PREFIX + row number.
    #[arg(long, default_value = "")]
    pub key_prefix: String,
    /// Entities per transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Skip the first N records (lines or vectors). Default: resume after the records a
    /// previous, interrupted import of the same file recorded as done.
    #[arg(long)]
    pub skip: Option<u64>,
    /// Start from the beginning even if an interrupted import was recorded.
    #[arg(long)]
    pub restart: bool,
    /// Stop at the first bad record (default: report it with its line number and go on).
    #[arg(long)]
    pub strict: bool,
    /// Create the collection with this dimension if it does not exist.
    #[arg(long)]
    pub dim: Option<u32>,
    /// Metric of a collection created by --dim.
    #[arg(long, value_enum, default_value = "cosine")]
    pub metric: MetricArg,
}

/// `hybridb export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Collection.
    pub collection: String,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Leave vectors out.
    #[arg(long)]
    pub no_vector: bool,
    /// Only entities passing this filter (JSON).
    #[arg(long)]
    pub filter: Option<String>,
}

/// `hybridb search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Collection.
    pub collection: String,
    /// Query vector: a JSON array (`[0.1,0.2]`) or comma-separated numbers; for a sparse
    /// vector (with --using), `{"indices":[..],"values":[..]}`.
    #[arg(long, allow_hyphen_values = true)]
    pub vector: String,
    /// The named vector to search (default: the default vector).
    #[arg(long, default_value = "")]
    pub using: String,
    /// How many hits.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// HNSW search effort.
    #[arg(long)]
    pub ef: Option<usize>,
    /// Include payloads.
    #[arg(long)]
    pub with_payload: bool,
    /// Include stored vectors.
    #[arg(long)]
    pub with_vector: bool,
    /// Only entities passing this filter (JSON, e.g. '{"must":[{"key":"lang","match":{"value":"en"}}]}').
    #[arg(long)]
    pub filter: Option<String>,
    /// Run the search on a replication target (postgres:// URL) instead of the database file.
    #[arg(long, value_name = "POSTGRES_URL")]
    pub target: Option<String>,
    /// Schema of the replicated tables in the target.
    #[arg(long, default_value = "hybridb")]
    pub target_schema: String,
}

/// `hybridb query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Collection.
    pub collection: String,
    /// The query as JSON (the body of `POST /collections/{name}/query`, e.g.
    /// '{"prefetch":[{"query":{"nearest":[0.1,0.2]}},{"query":{"text":"files"},"using":"body"}],
    /// "query":{"fusion":{"method":"rrf"}},"limit":5}'), or `@FILE` to read it from a file.
    pub query: String,
}
