using System.Diagnostics;
using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.WriteBack;

/// <summary>
/// Blocks a sequential writer fills are uploaded while the file is still open, counted in the
/// Tahoe test gateway's request log: never stored twice, never committed before a close, stored
/// again when written again, and recovered after a crash like any data written and not closed.
/// </summary>
public sealed class EarlyUploadTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private TahoeBackedFilesystem _fs = null!;
    private readonly TempDirectory _sources = TempDirectory.Create("early-src");

    public async Task InitializeAsync() => _fs = await TahoeBackedFilesystem.CreateAsync();

    public async Task DisposeAsync()
    {
        await _fs.DisposeAsync();
        _sources.Dispose();
    }

    [Fact]
    public async Task Full_blocks_are_stored_while_the_writer_keeps_the_file_open_and_not_again_after_the_close()
    {
        // One connection: two early uploads at a time, the other blocks wait for their turn.
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options(maxConnections: "1"));
        var path = $"{mount.Path}/early";
        var data = RandomNumberGenerator.GetBytes(6 * Block + 1000);
        var uploads = _fs.Gateway.Counters.Uploads;
        _fs.Gateway.Counters.ResetMaxInFlight();

        using (var writer = OpenWriter.Start(path, data, _sources.Path))
        {
            await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Gateway.Counters.Uploads - uploads >= 6, "the six full blocks are stored before the close");
            Assert.False(writer.HasClosed, "the writer closed the file");
            // Nothing is sealed, so nothing is committed: no journal entry.
            Assert.DoesNotContain(TahoeBackedFilesystem.Staged(mount.CacheDir), p => p.EndsWith(".commit", StringComparison.Ordinal));
            Assert.Equal(6, _fs.Gateway.Counters.Uploads - uploads);
            await writer.CloseAsync();
        }
        TahoeBackedFilesystem.Fsync(path);
        // Only the tail is stored by the commit.
        Assert.Equal(7, _fs.Gateway.Counters.Uploads - uploads);
        Assert.Equal(1, _fs.Gateway.Counters.MaxInFlight);
        Assert.Equal(0, await mount.UnmountAsync());

        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(data, await File.ReadAllBytesAsync($"{fresh.Path}/early"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }

    [Fact]
    public async Task A_block_written_again_after_its_early_upload_is_stored_again_with_the_new_bytes()
    {
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options());
        var path = $"{mount.Path}/rewritten";
        var data = RandomNumberGenerator.GetBytes(2 * Block + 100);
        var uploads = _fs.Gateway.Counters.Uploads;
        Assert.Equal(0, Sys.Open(path, Sys.O_WRONLY | Sys.O_CREAT, 0x1A4, out var fd));
        try
        {
            Assert.Equal(0, Sys.Write(fd, data, out _));
            await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Gateway.Counters.Uploads - uploads >= 2, "the two full blocks are stored");
            var patch = RandomNumberGenerator.GetBytes(10);
            Assert.Equal(0, Sys.PWrite(fd, patch, 5, out _));
            patch.CopyTo(data, 5);
            // The open file serves the newest bytes, not the stored block.
            Assert.Equal(data, await File.ReadAllBytesAsync(path));
        }
        finally
        {
            Sys.Close(fd);
        }
        TahoeBackedFilesystem.Fsync(path);
        // Block 0 once more, and the tail.
        Assert.Equal(4, _fs.Gateway.Counters.Uploads - uploads);
        Assert.Equal(0, await mount.UnmountAsync());

        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(data, await File.ReadAllBytesAsync($"{fresh.Path}/rewritten"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }

    [Fact]
    public async Task Blocks_uploaded_early_but_never_closed_survive_a_kill_and_are_committed_by_the_next_mount()
    {
        using var cache = TempDirectory.Create("early-cache");
        var data = RandomNumberGenerator.GetBytes(3 * Block + 500);
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            var uploads = _fs.Gateway.Counters.Uploads;
            using var writer = OpenWriter.Start($"{mount.Path}/unclosed", data, _sources.Path);
            await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Gateway.Counters.Uploads - uploads >= 3, "the full blocks are stored");
            await TahoeBackedFilesystem.WaitUntilAsync(() => new FileInfo($"{mount.Path}/unclosed").Length == data.Length, "the tail is written");
            mount.Kill();
        }
        await using (var again = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            Assert.Equal(data, await File.ReadAllBytesAsync($"{again.Path}/unclosed"));
            Assert.Equal(0, await again.UnmountAsync());
        }
        Assert.Empty(TahoeBackedFilesystem.Staged(cache.Path));
        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(data, await File.ReadAllBytesAsync($"{fresh.Path}/unclosed"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }

    /// <summary>
    /// A writer that holds the file open until disposed: <c>dd</c>, copying what this test
    /// writes into a pipe, opens the file once and closes it only at the pipe's end. (Not a
    /// descriptor of this test process, nor one a shell hands to its children: every close of
    /// any copy of a descriptor flushes the file, and any fork and exec another test makes
    /// meanwhile copies this process's descriptors.)
    /// </summary>
    private sealed class OpenWriter : IDisposable
    {
        private readonly Process _dd;
        private readonly FileStream _pipe;

        private OpenWriter(Process dd, FileStream pipe)
        {
            _dd = dd;
            _pipe = pipe;
        }

        public bool HasClosed => _dd.HasExited;

        public static OpenWriter Start(string path, byte[] data, string scratch)
        {
            var fifo = Path.Combine(scratch, Guid.NewGuid().ToString("N"));
            using (var mkfifo = Process.Start("mkfifo", [fifo])) mkfifo.WaitForExit();
            var dd = Process.Start("dd", [$"if={fifo}", $"of={path}", "bs=64k", "status=none"]);
            var pipe = new FileStream(fifo, FileMode.Open, FileAccess.Write);
            pipe.Write(data);
            pipe.Flush();
            return new OpenWriter(dd, pipe);
        }

        /// <summary>Ends the pipe; the writer closes the file and exits.</summary>
        public async Task CloseAsync()
        {
            await _pipe.DisposeAsync();
            await _dd.WaitForExitAsync();
            Assert.Equal(0, _dd.ExitCode);
        }

        public void Dispose()
        {
            _pipe.Dispose();
            if (!_dd.HasExited) _dd.Kill();
            _dd.Dispose();
        }
    }
}
