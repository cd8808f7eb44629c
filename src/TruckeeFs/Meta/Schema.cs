using System.Data.Common;
using System.Text.RegularExpressions;
using Dapper;

namespace TruckeeFs.Meta;

/// <summary>
/// The database schema as an ordered list of migrations. A database records the last migration
/// applied; opening it applies the missing ones, each in its own transaction (MySQL commits DDL
/// implicitly, so each migration is written to be safe to re-run after a crash midway).
/// </summary>
internal static partial class Schema
{
    /// <summary>The root directory's inode number, as FUSE requires.</summary>
    public const long RootInode = 1;

    private static readonly string[][] Migrations =
    [
        // 1: the initial schema.
        [
            "CREATE TABLE IF NOT EXISTS filesystem (id {cap} NOT NULL, created BIGINT NOT NULL) {table_options}",
            """
            CREATE TABLE IF NOT EXISTS inodes (
                id {autoinc}, mode BIGINT NOT NULL, uid BIGINT NOT NULL, gid BIGINT NOT NULL,
                nlink BIGINT NOT NULL, size BIGINT NOT NULL, atime BIGINT NOT NULL,
                mtime BIGINT NOT NULL, ctime BIGINT NOT NULL, rdev BIGINT NOT NULL,
                target {blob} NULL, version BIGINT NOT NULL) {table_options}
            """,
            """
            CREATE TABLE IF NOT EXISTS dirents (
                id {autoinc}, parent BIGINT NOT NULL, name {name} NOT NULL, inode BIGINT NOT NULL,
                UNIQUE (parent, name)) {table_options}
            """,
            "CREATE INDEX dirents_parent_id ON dirents (parent, id)",
            "CREATE INDEX dirents_inode ON dirents (inode)",
            """
            CREATE TABLE IF NOT EXISTS xattrs (
                inode BIGINT NOT NULL, name {name} NOT NULL, value {blob} NOT NULL,
                PRIMARY KEY (inode, name)) {table_options}
            """,
            """
            CREATE TABLE IF NOT EXISTS blocks (
                inode BIGINT NOT NULL, idx BIGINT NOT NULL, cap {cap} NOT NULL, length BIGINT NOT NULL,
                PRIMARY KEY (inode, idx)) {table_options}
            """,
            """
            CREATE TABLE IF NOT EXISTS contents (
                cap {cap} NOT NULL PRIMARY KEY, refs BIGINT NOT NULL, length BIGINT NOT NULL) {table_options}
            """,
            """
            CREATE TABLE IF NOT EXISTS sessions (
                id {autoinc}, host VARCHAR(255) NOT NULL, pid BIGINT NOT NULL, mountpoint {blob} NOT NULL,
                started BIGINT NOT NULL, heartbeat BIGINT NOT NULL) {table_options}
            """,
        ],
        // 2: several mounts at once: how to tell whether a session's process still runs (boot,
        // pid namespace, pid, start time), which session has which inode open (an unlinked
        // inode lives while any has), and the flock and POSIX byte-range locks each session holds.
        [
            "ALTER TABLE sessions ADD COLUMN liveness VARCHAR(255) NOT NULL DEFAULT ''",
            """
            CREATE TABLE IF NOT EXISTS opens (
                inode BIGINT NOT NULL, session BIGINT NOT NULL, PRIMARY KEY (inode, session)) {table_options}
            """,
            "CREATE INDEX opens_session ON opens (session)",
            """
            CREATE TABLE IF NOT EXISTS locks (
                id {autoinc}, inode BIGINT NOT NULL, session BIGINT NOT NULL, owner BIGINT NOT NULL,
                pid BIGINT NOT NULL, flock INT NOT NULL, is_write INT NOT NULL,
                first_byte BIGINT NOT NULL, last_byte BIGINT NOT NULL) {table_options}
            """,
            "CREATE INDEX locks_inode ON locks (inode)",
            "CREATE INDEX locks_session ON locks (session)",
        ],
        // 3: a lock request reads the locks near its bytes, not all the file's: found through an
        // index that also holds where each ends. Each inode counts the bytes of its blocks, so
        // that a stat tells a sparse file's allocation without reading its block map.
        [
            "CREATE INDEX locks_range ON locks (inode, flock, first_byte, last_byte)",
            "ALTER TABLE inodes ADD COLUMN allocated BIGINT NOT NULL DEFAULT 0",
            "UPDATE inodes SET allocated = (SELECT COALESCE(SUM(length), 0) FROM blocks WHERE blocks.inode = inodes.id)",
        ],
    ];

    public static int LatestVersion => Migrations.Length;

    /// <summary>Brings the database up to date; creates the root directory and identity on first use.</summary>
    public static void Migrate(SqlDialect dialect, long now, long rootUid, long rootGid)
    {
        using var lease = dialect.Rent();
        var connection = lease.Connection;
        connection.Execute(dialect.Expand("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL) {table_options}"));
        var version = connection.ExecuteScalar<long?>("SELECT MAX(version) FROM schema_version") ?? 0;
        if (version > LatestVersion)
            throw new MetaStoreException(
                $"{dialect.Description}: metadata schema version {version} is newer than this truckeefs understands ({LatestVersion}); upgrade truckeefs");
        for (var next = version + 1; next <= LatestVersion; next++)
        {
            foreach (var statement in Migrations[next - 1])
                ExecuteIgnoringExisting(dialect, connection, dialect.Expand(statement));
            using var transaction = dialect.BeginWrite(connection);
            if (next == 1) CreateRoot(connection, transaction, now, rootUid, rootGid);
            connection.Execute("INSERT INTO schema_version (version) VALUES (@next)", new { next }, transaction);
            transaction.Commit();
        }
        dialect.Migrated(connection);
    }

    private static void CreateRoot(DbConnection connection, DbTransaction transaction, long now, long uid, long gid)
    {
        if (connection.ExecuteScalar<long>("SELECT COUNT(*) FROM inodes WHERE id = @RootInode", new { RootInode }, transaction) > 0) return;
        connection.Execute(
            """
            INSERT INTO inodes (id, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version)
            VALUES (@RootInode, @mode, @uid, @gid, 2, 0, @now, @now, @now, 0, NULL, 0)
            """,
            new { RootInode, mode = FileModes.Directory | 0x1ED /* 0755 */, uid, gid, now }, transaction);
        connection.Execute("INSERT INTO filesystem (id, created) VALUES (@id, @now)", new { id = Guid.NewGuid().ToString("N"), now }, transaction);
    }

    /// <summary>Index and column creation have no portable IF NOT EXISTS; a re-run after a crash finds them present.</summary>
    private static void ExecuteIgnoringExisting(SqlDialect dialect, DbConnection connection, string sql)
    {
        var added = AddedColumn().Match(sql);
        if (added.Success && ColumnExists(connection, added.Groups[1].Value, added.Groups[2].Value)) return;
        try
        {
            connection.Execute(sql);
        }
        catch (DbException e) when (sql.StartsWith("CREATE INDEX", StringComparison.Ordinal) && dialect.IsExistingIndex(e))
        {
        }
        catch (DbException) when (added.Success && ColumnExists(connection, added.Groups[1].Value, added.Groups[2].Value))
        {
            // Another host migrating at the same moment added it first.
        }
    }

    private static bool ColumnExists(DbConnection connection, string table, string column)
    {
        try
        {
            connection.Execute($"SELECT {column} FROM {table} WHERE 1 = 0");
            return true;
        }
        catch (DbException)
        {
            return false;
        }
    }

    [GeneratedRegex("^ALTER TABLE (\\w+) ADD COLUMN (\\w+) ")]
    private static partial Regex AddedColumn();
}
