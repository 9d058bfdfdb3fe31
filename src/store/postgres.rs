//! The PostgreSQL backend: the trees in one table, `opsbot_kv (tree, key,
//! value)`, keyed by `(tree, key)`; a transaction a `SERIALIZABLE`
//! transaction, retried from the start when PostgreSQL reports a
//! serialisation failure, so that several instances writing the same
//! records are serialised by the database, never by luck. A commit is
//! durable when it returns (`synchronous_commit` as the server has it).
//!
//! The store's callers are synchronous (the commit thread, the outbox
//! workers, queries): each call runs on a small runtime of this backend's
//! own, on a thread of its own, and waits for the answer, so it works from
//! any thread, inside an async task or not.
//!
//! A transaction keeps its writes in memory and sends them at commit in two
//! statements (upserts, deletes), so an event costs one round trip per key
//! it reads, not per key it writes.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::kv::{owned, Backend, Pair, Read, Scan, SnapshotBody, TreeName, Tx, TxBody};
use crate::error::StoreError;

/// The version of this backend's own tables. Bump it with a migration.
const KV_SCHEMA: i32 = 1;

/// How many times a transaction is tried before a conflict is reported.
const TRIES: u32 = 64;

/// How many records a scan reads per round trip, at most.
const PAGE: i64 = 512;

/// How many records a scan's first round trip reads: many scans want one
/// or a few records (the oldest pending effect), and a full page of values
/// would be read, sent and decoded for nothing. Each later page is twice
/// the one before, up to [`PAGE`].
const FIRST_PAGE: i64 = 16;

/// How long a call waits for PostgreSQL before it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

const MIGRATION_1: &str = "
CREATE TABLE IF NOT EXISTS opsbot_kv (
    tree smallint NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tree, key)
);
CREATE TABLE IF NOT EXISTS opsbot_lease (
    name text PRIMARY KEY,
    holder text NOT NULL,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
";

/// How many bytes of keys and values [`Hints`] keep in each of their two
/// generations: at most twice this is held.
const HINT_BYTES: usize = 8 << 20;

/// What this instance last saw of the keys its transactions read and
/// wrote, as they committed: [`Tx::hint`]'s guesses, which rehearsals take
/// for the keys a transaction has not read yet (so that one rehearsal
/// follows the path the batch will take). Never decided on: another
/// instance may have changed any of them since. Bounded: two generations,
/// the older dropped when the newer is full.
#[derive(Default)]
struct Hints {
    new: HashMap<CodeKey, Option<Vec<u8>>>,
    old: HashMap<CodeKey, Option<Vec<u8>>>,
    bytes: usize,
}

/// A key as stored: its tree's code and the key.
type CodeKey = (i16, Vec<u8>);

impl Hints {
    fn get(&self, k: &CodeKey) -> Option<Option<Vec<u8>>> {
        self.new.get(k).or_else(|| self.old.get(k)).cloned()
    }

    fn put(&mut self, k: CodeKey, v: Option<Vec<u8>>) {
        let size = k.1.len() + v.as_ref().map_or(0, Vec::len) + 16;
        if self.bytes + size > HINT_BYTES {
            self.old = std::mem::take(&mut self.new);
            self.bytes = 0;
        }
        self.bytes += size;
        self.new.insert(k, v);
    }
}

/// A connection pool on PostgreSQL, and the runtime its calls run on.
#[derive(Clone)]
pub(super) struct PgBackend {
    pool: Pool,
    hints: Arc<std::sync::Mutex<Hints>>,
    /// In a snapshot: the connection of its `REPEATABLE READ READ ONLY`
    /// transaction, which every read goes through (and writes are refused).
    held: Option<Arc<Object>>,
    rt: tokio::runtime::Handle,
    /// Dropping it stops the runtime's thread.
    _stop: std::sync::mpsc::SyncSender<()>,
    /// Where, without the password: for logs and `check`.
    shown: String,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgBackend({})", self.shown)
    }
}

/// A PostgreSQL error as the store reports it.
fn db_error(e: &tokio_postgres::Error) -> StoreError {
    let detail = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    };
    StoreError::Database { detail }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(&e),
        other => StoreError::Database {
            detail: other.to_string(),
        },
    }
}

/// Whether PostgreSQL asks for the transaction to be tried again.
fn is_retry(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The URL with its password hidden.
fn without_password(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
            format!(
                "postgresql://{}@{}:{}/{}",
                c.get_user().unwrap_or(""),
                hosts.join(","),
                ports.join(","),
                c.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "postgresql://(unreadable url)".into(),
    }
}

impl PgBackend {
    /// Connects to the database at `url` (a libpq URL or key=value string),
    /// creating or migrating this backend's tables, and refusing tables of
    /// a newer version.
    pub(super) fn connect(url: &str) -> Result<PgBackend, StoreError> {
        let shown = without_password(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Database {
            detail: format!("the database URL cannot be read: {e}"),
        })?;
        let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(0);
        std::thread::Builder::new()
            .name("opsbot-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("opsbot-postgres")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                // Runs until the backend is dropped (the sender with it).
                let _ = stop_rx.recv();
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| StoreError::Database {
                detail: format!("cannot start the database thread: {e}"),
            })?;
        let rt = handle_rx
            .recv()
            .map_err(|_| StoreError::Database {
                detail: "the database thread stopped".into(),
            })?
            .map_err(|detail| StoreError::Database { detail })?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _in_rt = rt.enter();
            Pool::builder(manager)
                .max_size(8)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(CALL_TIMEOUT))
                .create_timeout(Some(CALL_TIMEOUT))
                .build()
                .map_err(|e| StoreError::Database {
                    detail: e.to_string(),
                })?
        };
        let backend = PgBackend {
            pool,
            hints: Default::default(),
            held: None,
            rt,
            _stop: stop_tx,
            shown,
        };
        backend.migrate()?;
        Ok(backend)
    }

    /// Runs `fut` on the backend's runtime and waits for it.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let out = match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Ok(out) => out,
                Err(_) => Err(StoreError::Database {
                    detail: format!(
                        "PostgreSQL did not answer within {} s",
                        CALL_TIMEOUT.as_secs()
                    ),
                }),
            };
            let _ = tx.send(out);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Database {
                detail: "the database call was lost (its task stopped)".into(),
            })
        })
    }

    /// A write outside a transaction, refused in a snapshot.
    fn writable(&self) -> Result<(), StoreError> {
        match self.held {
            Some(_) => Err(StoreError::Database {
                detail: "a write inside a snapshot read (a bug: snapshots only read)".into(),
            }),
            None => Ok(()),
        }
    }

    fn client(&self) -> Result<Object, StoreError> {
        let pool = self.pool.clone();
        self.block(async move { pool.get().await.map_err(pool_error) })
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c.transaction().await.map_err(|e| db_error(&e))?;
            // One instance migrates at a time.
            tx.batch_execute(
                "SELECT pg_advisory_xact_lock(495555555555);
                 CREATE TABLE IF NOT EXISTS opsbot_schema (version integer NOT NULL);",
            )
            .await
            .map_err(|e| db_error(&e))?;
            let found: Option<i32> = tx
                .query_opt("SELECT max(version) FROM opsbot_schema", &[])
                .await
                .map_err(|e| db_error(&e))?
                .and_then(|r| r.get(0));
            let found = found.unwrap_or(0);
            if found > KV_SCHEMA {
                return Err(StoreError::Database {
                    detail: format!(
                        "the database's opsbot tables are of a newer version ({found}) than this binary knows ({KV_SCHEMA}); upgrade opsbot"
                    ),
                });
            }
            if found < 1 {
                tx.batch_execute(MIGRATION_1)
                    .await
                    .map_err(|e| db_error(&e))?;
            }
            if found < KV_SCHEMA {
                tx.execute("DELETE FROM opsbot_schema", &[])
                    .await
                    .map_err(|e| db_error(&e))?;
                tx.execute(
                    "INSERT INTO opsbot_schema (version) VALUES ($1)",
                    &[&KV_SCHEMA],
                )
                .await
                .map_err(|e| db_error(&e))?;
            }
            tx.commit().await.map_err(|e| db_error(&e))
        })
    }

    /// One try of a transaction: `Ok(None)` when PostgreSQL asks for it to
    /// be tried again.
    fn try_once(&self, body: &mut TxBody<'_>) -> Result<Option<()>, StoreError> {
        let client = Arc::new(self.client()?);
        let begin = client.clone();
        self.block(async move {
            begin
                .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                .await
                .map_err(|e| db_error(&e))
        })?;
        let tx = PgTx {
            backend: self,
            client: client.clone(),
            cache: Default::default(),
            failure: Default::default(),
        };
        let out = body(&tx);
        let failure = tx.failure.borrow_mut().take();
        let writes = std::mem::take(&mut *tx.cache.borrow_mut());
        let end = |sql: &'static str| {
            let c = client.clone();
            self.block(async move { c.batch_execute(sql).await.map_err(|e| db_error(&e)) })
        };
        match (failure, out) {
            (Some(Failure::Retry), _) => {
                end("ROLLBACK")?;
                return Ok(None);
            }
            (Some(Failure::Error(e)), _) | (None, Err(e)) => {
                // The connection may be broken: a failed rollback is
                // the same as one done (the server ends the transaction).
                let _ = end("ROLLBACK");
                return Err(e);
            }
            (None, Ok(())) => {}
        }
        // What the transaction saw and wrote: the hints once it commits.
        let seen: Vec<(CodeKey, Option<Vec<u8>>)> = writes
            .iter()
            .map(|(k, entry)| match entry {
                Cached::Read(v) | Cached::Wrote(v) => (k.clone(), v.clone()),
            })
            .collect();
        let mut put: (Vec<i16>, Vec<Vec<u8>>, Vec<Vec<u8>>) = Default::default();
        let mut del: (Vec<i16>, Vec<Vec<u8>>) = Default::default();
        for ((tree, key), entry) in writes {
            match entry {
                Cached::Wrote(Some(v)) => {
                    put.0.push(tree);
                    put.1.push(key);
                    put.2.push(v);
                }
                Cached::Wrote(None) => {
                    del.0.push(tree);
                    del.1.push(key);
                }
                Cached::Read(_) => {}
            }
        }
        let c = client.clone();
        let committed = self.block(async move {
            let run = async {
                if !del.0.is_empty() {
                    let st = c
                        .prepare_cached(
                            "DELETE FROM opsbot_kv WHERE (tree, key) IN \
                             (SELECT * FROM unnest($1::int2[], $2::bytea[]))",
                        )
                        .await?;
                    c.execute(&st, &[&del.0, &del.1]).await?;
                }
                if !put.0.is_empty() {
                    let st = c
                        .prepare_cached(
                            "INSERT INTO opsbot_kv (tree, key, value) \
                             SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[]) \
                             ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value",
                        )
                        .await?;
                    c.execute(&st, &[&put.0, &put.1, &put.2]).await?;
                }
                c.batch_execute("COMMIT").await
            };
            match run.await {
                Ok(()) => Ok(true),
                Err(e) if is_retry(&e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Ok(false)
                }
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Err(db_error(&e))
                }
            }
        })?;
        if committed {
            if let Ok(mut hints) = self.hints.lock() {
                for (k, v) in seen {
                    hints.put(k, v);
                }
            }
        }
        Ok(committed.then_some(()))
    }
}

/// The connection a read goes through: a snapshot's, or one from the pool.
async fn reader(pool: Pool, held: Option<Arc<Object>>) -> Result<Arc<Object>, StoreError> {
    match held {
        Some(c) => Ok(c),
        None => Ok(Arc::new(pool.get().await.map_err(pool_error)?)),
    }
}

impl Read for PgBackend {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (pool, held) = (self.pool.clone(), self.held.clone());
        let key = key.to_vec();
        self.block(async move {
            let c = reader(pool, held).await?;
            let st = c
                .prepare_cached("SELECT value FROM opsbot_kv WHERE tree = $1 AND key = $2")
                .await
                .map_err(|e| db_error(&e))?;
            let row = c
                .query_opt(&st, &[&tree.code(), &key])
                .await
                .map_err(|e| db_error(&e))?;
            Ok(row.map(|r| r.get(0)))
        })
    }
}

impl Backend for PgBackend {
    fn scan(
        &self,
        tree: TreeName,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
    ) -> Scan<'_> {
        Box::new(PgScan {
            backend: self,
            tree,
            from: owned(from),
            to: owned(to),
            reverse,
            page: Vec::new().into_iter(),
            limit: FIRST_PAGE,
            done: false,
        })
    }

    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.writable()?;
        let pool = self.pool.clone();
        let (key, value) = (key.to_vec(), value.to_vec());
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let st = c
                .prepare_cached(
                    "INSERT INTO opsbot_kv (tree, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value",
                )
                .await
                .map_err(|e| db_error(&e))?;
            c.execute(&st, &[&tree.code(), &key, &value])
                .await
                .map_err(|e| db_error(&e))?;
            Ok(())
        })
    }

    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError> {
        self.writable()?;
        let pool = self.pool.clone();
        let key = key.to_vec();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let st = c
                .prepare_cached("DELETE FROM opsbot_kv WHERE tree = $1 AND key = $2")
                .await
                .map_err(|e| db_error(&e))?;
            c.execute(&st, &[&tree.code(), &key])
                .await
                .map_err(|e| db_error(&e))?;
            Ok(())
        })
    }

    fn delete_many(&self, tree: TreeName, keys: &[&[u8]]) -> Result<(), StoreError> {
        self.writable()?;
        if keys.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            let st = c
                .prepare_cached("DELETE FROM opsbot_kv WHERE tree = $1 AND key = ANY($2)")
                .await
                .map_err(|e| db_error(&e))?;
            c.execute(&st, &[&tree.code(), &keys])
                .await
                .map_err(|e| db_error(&e))?;
            Ok(())
        })
    }

    /// One statement in a `READ COMMITTED` transaction: the rows the
    /// `DELETE` removed (a row another caller removed first is not among
    /// them), counted into the counter by an update that adds to what the
    /// row holds when it is written. Outside `SERIALIZABLE`, so a delivery
    /// recorded while the commit thread decides a batch is no part of its
    /// read/write dependencies: PostgreSQL tracks them by index page, and
    /// the queue's records and counters share pages with what a batch
    /// reads and writes, which refused the batch's commit or the removal
    /// (and had it decided again). Nothing a batch decides on is written
    /// here: it adds to a queue and reads the added counter, never these.
    fn remove_counted(
        &self,
        tree: TreeName,
        keys: &[&[u8]],
        counter: &[u8],
    ) -> Result<(), StoreError> {
        self.writable()?;
        if keys.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let counter = counter.to_vec();
        self.block(async move {
            let mut c = pool.get().await.map_err(pool_error)?;
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
                .start()
                .await
                .map_err(|e| db_error(&e))?;
            let st = tx
                .prepare_cached(
                    "WITH gone AS (DELETE FROM opsbot_kv WHERE tree = $1 AND key = ANY($2) RETURNING 1) \
                     INSERT INTO opsbot_kv AS c (tree, key, value) \
                     SELECT $3, $4, decode(lpad(to_hex(count(*)), 16, '0'), 'hex') FROM gone \
                     HAVING count(*) > 0 \
                     ON CONFLICT (tree, key) DO UPDATE SET value = decode(lpad(to_hex( \
                       ('x' || encode(c.value, 'hex'))::bit(64)::bigint \
                       + ('x' || encode(excluded.value, 'hex'))::bit(64)::bigint), 16, '0'), 'hex')",
                )
                .await
                .map_err(|e| db_error(&e))?;
            tx.execute(&st, &[&tree.code(), &keys, &TreeName::Meta.code(), &counter])
                .await
                .map_err(|e| db_error(&e))?;
            tx.commit().await.map_err(|e| db_error(&e))
        })
    }

    fn count(&self, tree: TreeName) -> Result<usize, StoreError> {
        let (pool, held) = (self.pool.clone(), self.held.clone());
        self.block(async move {
            let c = reader(pool, held).await?;
            let row = c
                .query_one(
                    "SELECT count(*) FROM opsbot_kv WHERE tree = $1",
                    &[&tree.code()],
                )
                .await
                .map_err(|e| db_error(&e))?;
            let n: i64 = row.get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), StoreError> {
        self.writable()?;
        for attempt in 0..TRIES {
            if self.try_once(body)?.is_some() {
                return Ok(());
            }
            // Back off a little, more each time, so that two instances
            // that keep colliding drift apart.
            std::thread::sleep(Duration::from_micros(200 * u64::from(attempt.min(20) + 1)));
        }
        Err(StoreError::Conflict)
    }

    /// One `REPEATABLE READ READ ONLY` transaction: every read of the
    /// body sees the state committed when it began, and holds back no
    /// writer.
    fn snapshot(&self, body: &mut SnapshotBody<'_>) -> Result<(), StoreError> {
        let client = Arc::new(self.client()?);
        let begin = client.clone();
        self.block(async move {
            begin
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(|e| db_error(&e))
        })?;
        let snap: Arc<dyn Backend> = Arc::new(PgBackend {
            held: Some(client.clone()),
            ..self.clone()
        });
        let out = body(&snap);
        drop(snap);
        let sql = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let end =
            self.block(async move { client.batch_execute(sql).await.map_err(|e| db_error(&e)) });
        out.and(end)
    }

    fn flush(&self) -> Result<(), StoreError> {
        // A commit is durable once PostgreSQL answered it.
        Ok(())
    }

    fn describe(&self) -> String {
        format!("postgres {}", self.shown)
    }

    fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<u64>, StoreError> {
        let pool = self.pool.clone();
        let (name, holder) = (name.to_string(), holder.to_string());
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            // The database's clock decides, so instances' clocks need not
            // agree; the row is locked while one instance decides.
            let st = c
                .prepare_cached(
                    "INSERT INTO opsbot_lease AS l (name, holder, token, expires_at) \
                     VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond') \
                     ON CONFLICT (name) DO UPDATE SET \
                       holder = excluded.holder, \
                       token = CASE WHEN l.holder = excluded.holder THEN l.token ELSE l.token + 1 END, \
                       expires_at = excluded.expires_at \
                     WHERE l.holder = excluded.holder OR l.expires_at < clock_timestamp() \
                     RETURNING token",
                )
                .await
                .map_err(|e| db_error(&e))?;
            let row = c
                .query_opt(&st, &[&name, &holder, &(ms as f64)])
                .await
                .map_err(|e| db_error(&e))?;
            Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64))
        })
    }

    fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let (name, holder) = (name.to_string(), holder.to_string());
        self.block(async move {
            let c = pool.get().await.map_err(pool_error)?;
            c.execute(
                "UPDATE opsbot_lease SET expires_at = clock_timestamp() - interval '1 second' \
                 WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .await
            .map_err(|e| db_error(&e))?;
            Ok(())
        })
    }
}

/// Why a transaction's read or write failed.
enum Failure {
    /// PostgreSQL asks for the transaction to be tried again.
    Retry,
    Error(StoreError),
}

/// What a transaction knows of a key.
enum Cached {
    /// As read from the database.
    Read(Option<Vec<u8>>),
    /// As written by this transaction (`None`: deleted).
    Wrote(Option<Vec<u8>>),
}

/// A transaction's view: reads go to PostgreSQL once per key, writes stay
/// here until the commit.
struct PgTx<'a> {
    backend: &'a PgBackend,
    client: Arc<Object>,
    cache: std::cell::RefCell<HashMap<(i16, Vec<u8>), Cached>>,
    failure: std::cell::RefCell<Option<Failure>>,
}

impl Read for PgTx<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if self.failure.borrow().is_some() {
            return Err(StoreError::Conflict);
        }
        let k = (tree.code(), key.to_vec());
        if let Some(Cached::Read(v) | Cached::Wrote(v)) = self.cache.borrow().get(&k) {
            return Ok(v.clone());
        }
        let c = self.client.clone();
        let key = key.to_vec();
        let got = self.backend.block(async move {
            let st = c
                .prepare_cached("SELECT value FROM opsbot_kv WHERE tree = $1 AND key = $2")
                .await;
            let row = match st {
                Ok(st) => c.query_opt(&st, &[&tree.code(), &key]).await,
                Err(e) => Err(e),
            };
            Ok(row.map(|r| r.map(|r| r.get::<_, Vec<u8>>(0))))
        });
        let v = self.kept(got)?;
        self.cache.borrow_mut().insert(k, Cached::Read(v.clone()));
        Ok(v)
    }
}

impl PgTx<'_> {
    /// The answer of a read, or its failure kept by the transaction (which
    /// retries or gives up) and shown to the reader as a conflict.
    fn kept<T>(
        &self,
        got: Result<Result<T, tokio_postgres::Error>, StoreError>,
    ) -> Result<T, StoreError> {
        match got {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                *self.failure.borrow_mut() = Some(if is_retry(&e) {
                    Failure::Retry
                } else {
                    Failure::Error(db_error(&e))
                });
                Err(StoreError::Conflict)
            }
            Err(e) => {
                *self.failure.borrow_mut() = Some(Failure::Error(e));
                Err(StoreError::Conflict)
            }
        }
    }
}

impl Tx for PgTx<'_> {
    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.cache.borrow_mut().insert(
            (tree.code(), key.to_vec()),
            Cached::Wrote(Some(value.to_vec())),
        );
        Ok(())
    }

    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError> {
        self.cache
            .borrow_mut()
            .insert((tree.code(), key.to_vec()), Cached::Wrote(None));
        Ok(())
    }

    fn reads_ahead(&self) -> bool {
        true
    }

    fn known(&self, tree: TreeName, key: &[u8]) -> Option<Option<Vec<u8>>> {
        match self.cache.borrow().get(&(tree.code(), key.to_vec())) {
            Some(Cached::Read(v) | Cached::Wrote(v)) => Some(v.clone()),
            None => None,
        }
    }

    fn hint(&self, tree: TreeName, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let hints = self.backend.hints.lock().ok()?;
        hints.get(&(tree.code(), key.to_vec()))
    }

    /// One statement for all the keys: for each, the same lookup in the
    /// primary key's index as a read of one key (so that `SERIALIZABLE`
    /// notes what was read, as it does for one key, not the whole table).
    fn prefetch(&self, keys: &[(TreeName, Vec<u8>)]) -> Result<(), StoreError> {
        if self.failure.borrow().is_some() {
            return Err(StoreError::Conflict);
        }
        let wanted: Vec<(i16, Vec<u8>)> = {
            let cache = self.cache.borrow();
            let mut seen = std::collections::HashSet::new();
            keys.iter()
                .map(|(t, k)| (t.code(), k.clone()))
                .filter(|k| !cache.contains_key(k) && seen.insert(k.clone()))
                .collect()
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let (trees, ks): (Vec<i16>, Vec<Vec<u8>>) = wanted.iter().cloned().unzip();
        let c = self.client.clone();
        let got = self.backend.block(async move {
            let st = c
                .prepare_cached(
                    "SELECT (SELECT v.value FROM opsbot_kv v \
                             WHERE v.tree = k.tree AND v.key = k.key) \
                     FROM unnest($1::int2[], $2::bytea[]) WITH ORDINALITY AS k(tree, key, n) \
                     ORDER BY k.n",
                )
                .await;
            let rows = match st {
                Ok(st) => c.query(&st, &[&trees, &ks]).await,
                Err(e) => Err(e),
            };
            Ok(rows.map(|rows| {
                rows.into_iter()
                    .map(|r| r.get::<_, Option<Vec<u8>>>(0))
                    .collect::<Vec<_>>()
            }))
        });
        let values = self.kept(got)?;
        if values.len() != wanted.len() {
            *self.failure.borrow_mut() = Some(Failure::Error(StoreError::Database {
                detail: format!(
                    "PostgreSQL answered {} of {} keys read together",
                    values.len(),
                    wanted.len()
                ),
            }));
            return Err(StoreError::Conflict);
        }
        let mut cache = self.cache.borrow_mut();
        for (k, v) in wanted.into_iter().zip(values) {
            cache.entry(k).or_insert(Cached::Read(v));
        }
        Ok(())
    }
}

/// A scan, a page of records at a time.
struct PgScan<'a> {
    backend: &'a PgBackend,
    tree: TreeName,
    from: Bound<Vec<u8>>,
    to: Bound<Vec<u8>>,
    reverse: bool,
    page: std::vec::IntoIter<Pair>,
    /// How many records the next round trip reads.
    limit: i64,
    done: bool,
}

impl PgScan<'_> {
    fn fetch(&mut self) -> Result<Vec<Pair>, StoreError> {
        let mut sql = String::from("SELECT key, value FROM opsbot_kv WHERE tree = $1");
        let mut params: Vec<Vec<u8>> = Vec::new();
        for (bound, low) in [(&self.from, true), (&self.to, false)] {
            let (op, k) = match (bound, low) {
                (Bound::Included(k), true) => (">=", k),
                (Bound::Excluded(k), true) => (">", k),
                (Bound::Included(k), false) => ("<=", k),
                (Bound::Excluded(k), false) => ("<", k),
                (Bound::Unbounded, _) => continue,
            };
            params.push(k.clone());
            sql.push_str(&format!(" AND key {op} ${}", params.len() + 1));
        }
        sql.push_str(if self.reverse {
            " ORDER BY key DESC"
        } else {
            " ORDER BY key"
        });
        sql.push_str(&format!(" LIMIT {}", self.limit));
        let (pool, held) = (self.backend.pool.clone(), self.backend.held.clone());
        let tree = self.tree.code();
        self.backend.block(async move {
            let c = reader(pool, held).await?;
            let st = c.prepare_cached(&sql).await.map_err(|e| db_error(&e))?;
            let mut args: Vec<&(dyn ToSql + Sync)> = vec![&tree];
            for p in &params {
                args.push(p);
            }
            let rows = c.query(&st, &args).await.map_err(|e| db_error(&e))?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }
}

impl Iterator for PgScan<'_> {
    type Item = Result<Pair, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(p) = self.page.next() {
            return Some(Ok(p));
        }
        if self.done {
            return None;
        }
        let page = match self.fetch() {
            Ok(p) => p,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if (page.len() as i64) < self.limit {
            self.done = true;
        }
        self.limit = (self.limit * 2).min(PAGE);
        // The next page starts after the last key of this one.
        if let Some((last, _)) = page.last() {
            if self.reverse {
                self.to = Bound::Excluded(last.clone());
            } else {
                self.from = Bound::Excluded(last.clone());
            }
        }
        self.page = page.into_iter();
        self.page.next().map(Ok)
    }
}
