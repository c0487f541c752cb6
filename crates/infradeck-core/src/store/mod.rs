//! The master database: the only code in infradeck that speaks SQL.
//!
//! [`Store::open`] checks the file, sets the pragmas (WAL, foreign keys, busy timeout,
//! `synchronous=NORMAL`) and applies pending migrations in one transaction. Reads are methods on
//! [`Store`]; writes happen inside [`Store::write`], which hands a [`Writer`] to a closure and
//! commits everything it did as one transaction, so a crash mid-write leaves the database as it was.

mod approvals;
mod audit;
mod changes;
mod configs;
mod details;
mod devices;
mod knowledge;
mod machine_index;
mod machines;
mod maintain;
mod merged;
mod name_index;
mod netbox;
mod overview;
mod past;
mod relationships;
pub mod schema;
mod search;
mod write_queue;

pub use approvals::{
    ActionCounts, ApprovalItem, Batch, NewApprovalItem, NewBatch, Review, grouped_by_kind,
    item_numbers, reviewed_digest,
};
pub use audit::{
    HistoryEntry, NewHistory, RunOwner, RunProgress, RunSummary, SourceStatus, SyncRun,
};
pub use changes::{FindingRow, RecordLabel};
pub use configs::config_hash;
pub use configs::{ConfigStored, ConfigVersion};
pub use details::{
    FactRow, FactsDiff, InterfaceRow, UplinkRow, VmRow, VolumeKey, VolumeLink, VolumeRow,
};
pub use devices::{
    CorrelationRow, Device, DeviceChange, DeviceDetail, DevicePage, DeviceQuery, DeviceSort,
    Upserted,
};
pub use knowledge::{EmbeddingRow, IssueRow, KbArticleRow};
pub use knowledge::{decode_vector, encode_vector};
pub(crate) use machines::MachineAudit;
pub use machines::{
    Machine, MachineCount, MachinePage, MachineQuery, MachineRecord, MachineSort, MachinesReport,
};
pub use maintain::{CheckReport, MaintainOptions, MaintainReport};
pub use merged::{
    FieldSource, FieldValue, MergedField, MergedView, compared_fields_agree, merged_fields,
};
#[cfg(test)]
pub(crate) use netbox::InventoryRecord;
pub(crate) use netbox::{
    InventoryInterface, InventoryMachine, InventoryNic, InventoryVm, ItemResult,
};
pub use overview::{ConfiguredDevice, DeviceCount};
pub use past::PastRecords;
pub use relationships::{Direction, InventoryCable, OwnedLink, Related, TreeNode};
pub(crate) use search::split_kinds;
pub use search::{HitKind, KnowledgeHit, SearchHit, content_type_of, fts_query};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{path} is not an SQLite database (its first bytes are not the SQLite header); refusing to touch it"
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "{path} has schema version {found}, written by a newer infradeck; this infradeck knows schema version {known}. Upgrade infradeck to open it"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "the database is locked by another process and stayed locked longer than the busy timeout ({timeout_ms} ms); try again when the other writer has finished"
    )]
    Busy { timeout_ms: u64 },
    #[error("{0}")]
    RunLocked(Box<RunLock>),
    #[error("{0}")]
    Conflict(String),
    /// A write to a database opened read-only.
    #[error("{0}")]
    ReadOnly(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A query that cannot be understood (an unknown `type:` in a search).
    #[error("{0}")]
    Query(String),
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid JSON in column {column}: {source}")]
    Json {
        column: &'static str,
        source: serde_json::Error,
    },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::Sqlite(err)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Who holds a source instance's run lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "sync of {source_system}/{source_identifier} is already running as run {sync_id} (pid {pid} on {host}, started {started_at}, last heartbeat {heartbeat_at}); the lock expires at {expires_at} if no heartbeat follows, or once its process is gone `infradeck sync --break-lock {sync_id}` releases it"
)]
pub struct RunLock {
    pub source_system: String,
    pub(crate) source_identifier: String,
    pub(crate) sync_id: String,
    pub(crate) pid: i64,
    pub(crate) host: String,
    pub(crate) started_at: String,
    pub(crate) heartbeat_at: String,
    /// When the heartbeat will count as stale (database time format).
    pub(crate) expires_at: String,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long a statement waits for another connection's lock before failing.
    pub busy_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// An open master database.
pub struct Store {
    /// This store's entry in the process-wide table of open database files.
    open_file_key: PathBuf,
    /// Same-process writers of this file take turns here before SQLite's lock.
    write_queue: std::sync::Arc<write_queue::WriteQueue>,
    /// Opened with [`Store::open_read_only`]: every write is refused.
    read_only: bool,
    conn: Connection,
    path: PathBuf,
    busy_timeout_ms: u64,
    /// Commits made through this connection; with `PRAGMA data_version` (which counts other
    /// connections' commits) it identifies the database state the name index was built from.
    local_commits: std::cell::Cell<u64>,
    /// The generation at which the last filtered device query ran without an index.
    last_unindexed_filter: std::cell::Cell<Option<name_index::Generation>>,
    name_index: std::cell::RefCell<Option<name_index::NameIndex>>,
    machine_index: std::cell::RefCell<Option<machine_index::MachineIndex>>,
    vectors: std::cell::RefCell<Option<search::VectorIndex>>,
}

impl Drop for Store {
    fn drop(&mut self) {
        let mut open_files = open_files();
        if let Some(count) = open_files.get_mut(&self.open_file_key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open_files.remove(&self.open_file_key);
            }
        }
    }
}

/// How many stores of this process have each database file open.
fn open_files() -> std::sync::MutexGuard<'static, std::collections::HashMap<PathBuf, usize>> {
    static OPEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, usize>>> =
        std::sync::OnceLock::new();
    OPEN.get_or_init(Default::default)
        .lock()
        // A panic while holding this lock cannot leave the counts half-updated: every update
        // is a single insert or remove.
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The identity of a database file: its canonical path when it exists (so `./a.db` and the
/// absolute path are one file), else the path as given.
fn open_file_key(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    match path.file_name() {
        Some(name) => parent.join(name),
        None => path.to_path_buf(),
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // Held until this store is registered, so two threads cannot both decide they are first.
        let mut open_files = open_files();
        let key = open_file_key(path);
        // Reading the header with our own file handle and closing it would, under POSIX rules,
        // drop every lock SQLite holds on the file for this process: another process could then
        // checkpoint and delete the WAL under our feet and corrupt the database. So the file is
        // only inspected while no connection of this process has it open.
        if open_files.get(&key).copied().unwrap_or(0) == 0 {
            refuse_foreign_file(path)?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let busy_timeout_ms = options.busy_timeout.as_millis() as u64;
        *open_files.entry(key.clone()).or_insert(0) += 1;
        drop(open_files);
        let mut store = Store {
            read_only: false,
            write_queue: write_queue::for_file(&key),
            open_file_key: key,
            conn,
            path: path.to_path_buf(),
            busy_timeout_ms,
            local_commits: std::cell::Cell::new(0),
            last_unindexed_filter: std::cell::Cell::new(None),
            name_index: std::cell::RefCell::new(None),
            machine_index: std::cell::RefCell::new(None),
            vectors: std::cell::RefCell::new(None),
        };
        store.conn.busy_timeout(options.busy_timeout)?;
        // Bulk statements come in a few IN-list sizes each; the default cache of 16 thrashes.
        store.conn.set_prepared_statement_cache_capacity(256);
        store.check_not_newer()?;
        store.switch_to_wal(options.busy_timeout)?;
        store.map_busy(|conn| {
            conn.execute_batch(
                "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
                 PRAGMA cache_size = -65536;",
            )
        })?;
        store.migrate()?;
        Ok(store)
    }

    /// Puts the database in WAL mode unless it already is.
    ///
    /// Switching the journal mode takes an exclusive lock that SQLite does not wait for: it
    /// answers BUSY at once while another connection holds any lock. Several processes (or the
    /// engine's parallel runs) opening a brand-new database at the same moment all see it in
    /// rollback mode and race to switch it, so a BUSY here is retried until the busy timeout,
    /// re-reading the mode each time because the winner has usually switched it meanwhile.
    fn switch_to_wal(&self, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            // The pragma answers with a row, so it is queried rather than executed.
            let attempt = self
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                .and_then(|mode| {
                    if mode.eq_ignore_ascii_case("wal") {
                        Ok(mode)
                    } else {
                        self.conn
                            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                    }
                });
            match attempt {
                Ok(_) => return Ok(()),
                Err(err) if is_busy(&err) && std::time::Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(err) => return Err(busy_or(err, self.busy_timeout_ms)),
            }
        }
    }

    /// The journal mode in force (`wal` once opened by infradeck).
    pub fn journal_mode(&self) -> Result<String> {
        self.map_busy(|conn| conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
    }

    /// The file this store is backed by.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn check_not_newer(&self) -> Result<()> {
        let found = self.schema_version().map_err(|e| self.busy_or(e))?;
        if found > schema::LATEST_VERSION {
            return Err(Error::NewerSchema {
                path: self.path.clone(),
                found,
                known: schema::LATEST_VERSION,
            });
        }
        Ok(())
    }

    /// Applies every pending migration in one transaction: either all land or none do.
    fn migrate(&mut self) -> Result<()> {
        let current = self.schema_version()?;
        if current >= schema::LATEST_VERSION {
            return Ok(());
        }
        let busy_timeout_ms = self.busy_timeout_ms;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| busy_or(e, busy_timeout_ms))?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (index, step) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(step)?;
            if index + 1 == schema::CHANGE_FINDINGS_VERSION as usize {
                changes::backfill_findings(&tx)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        }
        tx.commit().map_err(|e| busy_or(e, busy_timeout_ms))?;
        tracing::info!(path = %self.path.display(), from = current, to = schema::LATEST_VERSION, "migrated database schema");
        Ok(())
    }

    /// Opens an existing database for reading only, for a user who cannot write it (a shared
    /// copy, a snapshot in a read-only directory). Nothing is created, switched or migrated.
    /// When its WAL index cannot be created beside it, the file is read as immutable (it is
    /// then assumed not to change while open, which holds for such copies).
    pub fn open_read_only(path: &Path, options: &OpenOptions) -> Result<Store> {
        use std::os::unix::ffi::OsStrExt;
        let key = open_file_key(path);
        // A URI path: every byte but the unreserved ones percent-encoded (SQLite decodes `%XX`,
        // not `+`).
        let encoded: String = path
            .as_os_str()
            .as_bytes()
            .iter()
            .map(|&b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'~' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let sidecars_exist = wal_sidecars_exist(path);
        // Without its WAL files, a read-only connection would create them (owned by this user,
        // left behind, in the owner's way); with no WAL there is nothing to read from one, so
        // the file is read as immutable instead.
        let uri = if sidecars_exist {
            format!("file:{encoded}?mode=ro")
        } else {
            format!("file:{encoded}?mode=ro&immutable=1")
        };
        let conn = Connection::open_with_flags(uri, flags)?;
        *open_files().entry(key.clone()).or_insert(0) += 1;
        let store = Store {
            read_only: true,
            write_queue: write_queue::for_file(&key),
            open_file_key: key,
            conn,
            path: path.to_path_buf(),
            busy_timeout_ms: options.busy_timeout.as_millis() as u64,
            local_commits: std::cell::Cell::new(0),
            last_unindexed_filter: std::cell::Cell::new(None),
            name_index: std::cell::RefCell::new(None),
            machine_index: std::cell::RefCell::new(None),
            vectors: std::cell::RefCell::new(None),
        };
        store.conn.busy_timeout(options.busy_timeout)?;
        store.check_not_newer()?;
        let version = store.schema_version()?;
        if version < schema::LATEST_VERSION {
            return Err(Error::ReadOnly(format!(
                "{} has schema version {version} and this infradeck reads version {}; it cannot be migrated read-only: open it once as a user who can write it",
                path.display(),
                schema::LATEST_VERSION
            )));
        }
        Ok(store)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits; on error nothing is written.
    pub fn write<T>(&mut self, f: impl FnOnce(&Writer<'_>) -> Result<T>) -> Result<T> {
        if self.read_only {
            return Err(Error::ReadOnly(format!(
                "{} is open read-only (this user cannot write it)",
                self.path.display()
            )));
        }
        let busy_timeout_ms = self.busy_timeout_ms;
        let queue = self.write_queue.clone();
        let _turn = queue
            .wait_turn(std::time::Duration::from_millis(busy_timeout_ms))
            .ok_or(Error::Busy {
                timeout_ms: busy_timeout_ms,
            })?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| busy_or(e, busy_timeout_ms))?;
        let writer = Writer { tx };
        let value = f(&writer).map_err(|e| match e {
            Error::Sqlite(inner) => busy_or(inner, busy_timeout_ms),
            other => other,
        })?;
        writer
            .tx
            .commit()
            .map_err(|e| busy_or(e, busy_timeout_ms))?;
        self.local_commits.set(self.local_commits.get() + 1);
        Ok(value)
    }

    fn map_busy<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.conn).map_err(|e| busy_or(e, self.busy_timeout_ms))
    }

    fn busy_or(&self, err: Error) -> Error {
        match err {
            Error::Sqlite(inner) => busy_or(inner, self.busy_timeout_ms),
            other => other,
        }
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The current database state, for cache invalidation.
    fn generation(&self) -> Result<name_index::Generation> {
        let data_version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        Ok((data_version, self.local_commits.get()))
    }
}

/// A transaction in progress; every write method of the store lives here.
pub struct Writer<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Writer<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        &self.tx
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn busy_or(err: rusqlite::Error, timeout_ms: u64) -> Error {
    if is_busy(&err) {
        Error::Busy { timeout_ms }
    } else {
        Error::Sqlite(err)
    }
}

/// Whether both WAL files (`-wal`, `-shm`) of the database at `path` exist.
fn wal_sidecars_exist(path: &Path) -> bool {
    ["-wal", "-shm"].iter().all(|suffix| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        Path::new(&name).exists()
    })
}

/// Whether `path` is an existing database this user cannot write: the file itself, or the
/// directory that must hold its `-wal`/`-shm` files when they do not exist yet.
pub fn is_unwritable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let writable = |p: &Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return true;
        };
        // SAFETY: access(2) reads the NUL-terminated path and nothing else.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    if !path.is_file() {
        return false;
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let sidecars_exist = wal_sidecars_exist(path);
    !writable(path) || (!sidecars_exist && !writable(dir))
}

/// A text column read as UTF-8 whatever another tool wrote into it: invalid bytes become
/// U+FFFD (shown by the sanitizer as `�`), and a warning names the table, row and column. One
/// bad row must not make the inventory unreadable; nothing is written back.
pub(crate) fn lossy_text(
    row: &rusqlite::Row<'_>,
    index: usize,
    table: &'static str,
    row_id: i64,
    column: &'static str,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(index)? {
        ValueRef::Null => None,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => {
                tracing::warn!(
                    table,
                    row_id,
                    column,
                    "invalid UTF-8 in the database; shown with U+FFFD replacement characters"
                );
                String::from_utf8_lossy(bytes).into_owned()
            }
        }),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

/// Refuses a non-empty file that does not start with the SQLite header, before SQLite opens it,
/// so a mistyped `--db` never gets a WAL file or a journal written next to someone's data.
fn refuse_foreign_file(path: &Path) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    if read == 0 || header == *SQLITE_HEADER {
        Ok(())
    } else {
        Err(Error::NotADatabase {
            path: path.to_path_buf(),
        })
    }
}

/// Serializes a JSON value for a TEXT column; `null` becomes SQL NULL.
pub(crate) fn json_text(value: &serde_json::Value) -> Option<String> {
    if value.is_null() {
        None
    } else {
        Some(value.to_string())
    }
}

/// Parses a TEXT column holding JSON; SQL NULL becomes `null`.
pub(crate) fn parse_json(column: &'static str, text: Option<String>) -> Result<serde_json::Value> {
    match text {
        None => Ok(serde_json::Value::Null),
        Some(text) => serde_json::from_str(&text).map_err(|source| Error::Json { column, source }),
    }
}

/// What a write did to one record: reconcile turns this into audit rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    /// The record did not exist before.
    Added,
    /// The record existed and differed; `before` is what it was.
    Updated { before: T },
    /// The record existed and was identical; only its freshness was bumped, if at all.
    Unchanged,
}

/// Maps a TEXT column holding one of our closed-set values, failing the row read if it is not.
pub(crate) fn parse_text_enum<T: std::str::FromStr>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse::<T>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}
