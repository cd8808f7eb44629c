using Dapper;
using MySql.Data.MySqlClient;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// What the metadata operations of a small file's life cost in round trips to MariaDB (each a
/// wait on the network and the server), counted by a relay in front of the shared test server;
/// and what a link lost at the worst moment, after a commit was sent, does.
/// </summary>
public sealed class MariaDbRoundTripTests : IDisposable
{
    private const long Root = 1;
    private const long FileMode = FileModes.Regular | 0x1A4;
    private readonly MariaDbServer _server = MariaDbServer.Shared;
    private readonly string _database = $"trips_{Guid.NewGuid():N}";
    private readonly RoundTripCounter _relay;
    private readonly IMetaStore _store;

    public MariaDbRoundTripTests()
    {
        _server.CreateDatabase(_database);
        _relay = new RoundTripCounter(_server.Host, _server.Port);
        _store = new SqlMetaStore(new MySqlDialect(new MySqlOptions
        {
            Host = _server.Host, Port = _relay.Port, Database = _database, User = _server.User, Password = _server.Password,
        }), 1, 0, 0);
    }

    [Fact]
    public void A_small_file_costs_one_round_trip_for_each_trusted_write_two_for_other_changes_and_one_for_each_read()
    {
        var session = _store.OpenSession(new SessionInfo("host", 1, "/mnt", 1, ""));

        Assert.Equal(2, RoundTrips(() => _store.Create(Root, "f"u8.ToArray(), new NewNode(FileMode, 0, 0), 2, out _, session)));
        Assert.Contains(_relay.Requests, LockingRead);
        // Trusting the directory's row as the mount knows it: the writes with the commit, and no locking read.
        var root = _store.GetInode(Root)!;
        Assert.Equal(1, RoundTrips(() => _store.Create(Root, "known"u8.ToArray(), new NewNode(FileMode, 0, 0), 3, out _, out _, out _, session, root)));
        Assert.DoesNotContain(_relay.Requests, LockingRead);
        // A stale row stops the batch before its writes and commit, and costs a rollback and the create that reads first.
        Assert.Equal(4, RoundTrips(() => _store.Create(Root, "stale"u8.ToArray(), new NewNode(FileMode, 0, 0), 3, out _, out _, out _, session, root)));
        // So does a name taken after all, found by its unique key.
        root = _store.GetInode(Root)!;
        Assert.Equal(4, RoundTrips(() => Assert.Equal(Errno.EEXIST, _store.Create(Root, "f"u8.ToArray(), new NewNode(FileMode, 0, 0), 4, out _, out _, out _, session, root))));
        var file = _store.Lookup(Root, "f"u8.ToArray())!;
        // A file's first version trusts that there is nothing to replace: no locking read either.
        Assert.Equal(1, RoundTrips(() => _store.CommitContent(file.Id, new ContentCommit([new BlockRef(0, "cap-1", 10)], 10, 3, 3) { IsFirst = true }, out _, out _)));
        Assert.DoesNotContain(_relay.Requests, LockingRead);
        Assert.Equal(2, RoundTrips(() => _store.CommitContent(file.Id, new ContentCommit([new BlockRef(0, "cap-2", 10)], 10, 4, 4), out _, out _)));
        Assert.Contains(_relay.Requests, LockingRead);
        // Claimed of a file already committed, it costs a rollback and the commit that reads first.
        Assert.Equal(4, RoundTrips(() => _store.CommitContent(file.Id, new ContentCommit([new BlockRef(0, "cap-3", 10)], 10, 4, 4) { IsFirst = true }, out _, out _)));
        Assert.Equal(1, RoundTrips(() => _store.GetInode(file.Id)));
        Assert.Equal(1, RoundTrips(() => _store.Lookup(Root, "f"u8.ToArray())));
        Assert.Equal(2, RoundTrips(() => _store.SetAttributes(file.Id, new AttributeChange { Mode = 0x180 }, 5, out _)));
        Assert.Equal(1, RoundTrips(() => _store.RemoveOpens([file.Id], session)));
        Assert.Equal(1, RoundTrips(() => _store.AddOpen(file.Id, session)));
        Assert.Equal(1, RoundTrips(() => _store.RemoveOpens([file.Id], session)));
        Assert.Equal(2, RoundTrips(() => _store.Unlink(Root, "f"u8.ToArray(), 6, out _)));
        Assert.Equal(2, RoundTrips(() => _store.DeleteInode(file.Id, out _)));
        _store.Create(Root, "g"u8.ToArray(), new NewNode(FileMode, 0, 0), 6, out var other);
        _store.CommitContent(other.Id, new ContentCommit([new BlockRef(0, "cap-3", 10)], 10, 6, 6), out _, out _);
        Assert.Equal(2, RoundTrips(() => _store.Unlink(Root, "g"u8.ToArray(), 6, new Reclaim(other.Id, session), out _, out _, out _)));
        Assert.Null(_store.GetInode(other.Id));
        Assert.Equal(1, RoundTrips(() => _store.Heartbeat(session, 7)));
        _store.Create(Root, "locked"u8.ToArray(), new NewNode(FileMode, 0, 0), 7, out var locked);
        var lockTrips = new[]
        {
            RoundTrips(() => _store.SetLock(new FileLockRequest(locked.Id, session, 1, 1, false, FileLockType.Write, 0, 9), out _)),
            RoundTrips(() => _store.SetLock(new FileLockRequest(locked.Id, session, 1, 1, false, FileLockType.Unlock, 0, 9), out _)),
            RoundTrips(() => _store.SetLock(new FileLockRequest(locked.Id, session, 2, 1, true, FileLockType.Read, 0, long.MaxValue), out _)),
            RoundTrips(() => _store.ReleaseLocks(locked.Id, session, 2, flock: true)),
            RoundTrips(() => _store.TestLock(new FileLockRequest(locked.Id, session, 3, 1, false, FileLockType.Write, 0, 9))),
        };
        // Taking, changing and dropping a lock: the row and the locks, then the changes with the commit.
        // Releasing an owner's locks is one statement with the commit; testing for a conflict, one query.
        Assert.Equal([2, 2, 2, 1, 1], lockTrips);
        // A heartbeat's removal of the references of every file closed since: one round trip.
        var closed = Enumerable.Range(0, 200).Select(i =>
        {
            _store.Create(Root, System.Text.Encoding.ASCII.GetBytes($"closed{i}"), new NewNode(FileMode, 0, 0), 8, out var file, session);
            return file.Id;
        }).ToList();
        Assert.Equal(1, RoundTrips(() => _store.RemoveOpens(closed, session)));
    }

    [Fact]
    public void A_create_whose_reply_is_lost_after_its_commit_is_reported_as_maybe_applied_and_not_run_again()
    {
        _store.GetInode(Root);
        // The create's second batch carries its commit.
        _relay.CutAtReply(2);

        var failure = Assert.Throws<MetaStoreException>(() => _store.Create(Root, "cut"u8.ToArray(), new NewNode(FileMode, 0, 0), 2, out _));

        Assert.Contains("may or may not have been applied", failure.Message, StringComparison.Ordinal);
        // Applied once: the name exists, with one inode.
        Assert.NotNull(_store.Lookup(Root, "cut"u8.ToArray()));
        Assert.Equal(2, _store.Usage().Inodes);
    }

    public void Dispose()
    {
        _store.Dispose();
        _relay.Dispose();
        using var connection = new MySqlConnection(_server.ConnectionStringFor(""));
        connection.Open();
        connection.Execute($"DROP DATABASE `{_database}`");
    }

    private static bool LockingRead(string request) => request.Contains("FOR UPDATE", StringComparison.Ordinal);

    private int RoundTrips(Action operation)
    {
        _relay.Reset();
        operation();
        return _relay.RoundTrips;
    }
}
