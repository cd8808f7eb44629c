using System.Data.Common;

namespace TruckeeFs.Meta;

/// <summary>
/// Everything that differs between the SQL engines; the rest of the SQL is shared. Column types
/// are substituted into the schema's <c>{placeholders}</c>.
/// </summary>
public abstract class SqlDialect
{
    /// <summary>An auto-incrementing 64-bit primary key column whose values are never reused.</summary>
    public abstract string AutoIncrementKey { get; }

    /// <summary>A byte string of up to 255 bytes compared bytewise (names).</summary>
    public abstract string NameType { get; }

    /// <summary>An arbitrary byte string (xattr values, symlink targets).</summary>
    public abstract string BlobType { get; }

    /// <summary>An ASCII key of up to 512 characters (caps).</summary>
    public abstract string CapType { get; }

    /// <summary>Appended to CREATE TABLE.</summary>
    public abstract string TableOptions { get; }

    /// <summary>Expression giving the id of the row the last INSERT created on this connection.</summary>
    public abstract string LastInsertId { get; }

    /// <summary>
    /// Statements to run right after a guarding UPDATE, whose result is 1 if that UPDATE
    /// changed exactly one row. Where the engine can, they fail otherwise
    /// (<see cref="IsTrustRefused"/>), so that the statements sent after them in the same batch,
    /// a COMMIT included, do not run.
    /// </summary>
    public abstract string GuardHeld { get; }

    /// <summary>Appended to a SELECT inside a write transaction to lock the rows it reads.</summary>
    public abstract string ForUpdate { get; }

    /// <summary>
    /// An INSERT that updates <paramref name="updates"/> when a row with the same key exists.
    /// </summary>
    public abstract string Upsert(string table, string columns, string values, string keyColumns, string updates);

    /// <summary>A connection for one operation; disposing the lease gives it back.</summary>
    public abstract ConnectionLease Rent();

    /// <summary>Begins a transaction that will write (taking the engine's write lock up front where it has one).</summary>
    public abstract DbTransaction BeginWrite(DbConnection connection);

    /// <summary>
    /// <paramref name="sql"/>, the last statements of a write transaction (nothing runs in it
    /// after them), as the engine should run them: followed by the COMMIT where it can send both
    /// at once (from then on <see cref="IsCommitting"/>), unchanged where the commit follows on
    /// its own. If they fail, the transaction is still open, to be rolled back.
    /// </summary>
    public virtual string CommitWith(DbTransaction transaction, string sql) => sql;

    /// <summary>Whether the COMMIT of <paramref name="transaction"/> has been sent with its last statements: a failure since may have come after the server applied it.</summary>
    public virtual bool IsCommitting(DbTransaction transaction) => false;

    /// <summary>Whether <paramref name="exception"/> is a transient conflict (deadlock, busy) worth retrying the whole transaction for.</summary>
    public abstract bool IsTransientConflict(Exception exception);

    /// <summary>
    /// Whether <paramref name="exception"/> says a write that trusted what the mount knew found
    /// it otherwise: an INSERT refused because a row with the same unique key exists, or a
    /// failed <see cref="GuardHeld"/>.
    /// </summary>
    public abstract bool IsTrustRefused(Exception exception);

    /// <summary>
    /// Whether <paramref name="exception"/> means the connection to the server failed (refused,
    /// reset, timed out, server shut down) rather than the statement: the transaction was not
    /// applied, unless the failure came during its commit.
    /// </summary>
    public abstract bool IsConnectionFailure(Exception exception);

    /// <summary>
    /// Drops the idle connections kept for reuse after a connection failure: they lead to the
    /// same server, and each would otherwise be found dead (or time out) one operation at a time.
    /// </summary>
    public abstract void DiscardConnections();

    /// <summary>Whether a CREATE INDEX failed only because the index exists (a migration re-run after a crash).</summary>
    public abstract bool IsExistingIndex(Exception exception);

    /// <summary>Makes committed transactions durable, where commits alone do not.</summary>
    public abstract void Sync(DbConnection connection);

    /// <summary>Whether other processes (mounts on this or other hosts) can use the database at the same time.</summary>
    public abstract bool IsShared { get; }

    /// <summary>Called once the schema is up to date, before the store serves anything.</summary>
    public virtual void Migrated(DbConnection connection)
    {
    }

    /// <summary>Describes the database for logs, without secrets.</summary>
    public abstract string Description { get; }

    internal string Expand(string sql) => sql
        .Replace("{autoinc}", AutoIncrementKey, StringComparison.Ordinal)
        .Replace("{name}", NameType, StringComparison.Ordinal)
        .Replace("{blob}", BlobType, StringComparison.Ordinal)
        .Replace("{cap}", CapType, StringComparison.Ordinal)
        .Replace("{table_options}", TableOptions, StringComparison.Ordinal);
}

/// <summary>A connection lent for one operation.</summary>
public readonly struct ConnectionLease(DbConnection connection, Action<DbConnection> giveBack) : IDisposable
{
    public DbConnection Connection => connection;

    public void Dispose() => giveBack(connection);
}
