using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// <c>truckeefs fsck</c> through the real executable on an embedded filesystem: clean after
/// ordinary use, then each kind of damage made directly in the SQLite database or the content
/// folder is found, <c>--repair</c> fixes it and says how, and the repaired filesystem mounts
/// and reads as the repair says.
/// </summary>
public sealed class FsckTests
{
    private const int Block = 64 << 10;

    [Fact]
    public async Task A_filesystem_after_ordinary_use_is_clean()
    {
        await using var fs = new EmbeddedFilesystem();
        await using (var mount = await fs.MountAsync())
        {
            Directory.CreateDirectory(Path.Combine(mount.Path, "d", "e"));
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "d", "f"), RandomNumberGenerator.GetBytes(3 * Block + 5));
            File.CreateSymbolicLink(Path.Combine(mount.Path, "s"), "d/f");
            File.Copy(Path.Combine(mount.Path, "d", "f"), Path.Combine(mount.Path, "copy"));
            File.Delete(Path.Combine(mount.Path, "copy"));
            Assert.Equal(0, await mount.UnmountAsync());
        }

        var (status, output, error) = await fs.RunAsync("fsck");
        Assert.True(status == 0, output + error);
        Assert.Contains("clean: no problems found", output, StringComparison.Ordinal);
        Assert.Contains("checked sqlite", output, StringComparison.Ordinal);

        // Progress goes to a terminal only: none in a pipe, a line per phase on a pseudo-terminal.
        Assert.DoesNotContain("items/s", error, StringComparison.Ordinal);
        var terminal = await OnTerminalAsync(TruckeeFsMountOptions.DefaultExecutable, ["fsck", .. fs.Flags]);
        Assert.Contains("contents: 4/4 items", terminal, StringComparison.Ordinal);
        Assert.Contains("items/s", terminal, StringComparison.Ordinal);

        (status, output, error) = await fs.RunAsync("fsck", "--json");
        Assert.True(status == 0, output + error);
        var json = EmbeddedFilesystem.Json(output);
        Assert.True(json.GetProperty("clean").GetBoolean());
        Assert.Equal(0, json.GetProperty("findings").GetArrayLength());
        Assert.Equal(4, json.GetProperty("caps_checked").GetInt64());
    }

    [Fact]
    public async Task Each_kind_of_damage_is_found_and_repaired()
    {
        await using var fs = new EmbeddedFilesystem();
        var kept = RandomNumberGenerator.GetBytes(2 * Block);
        var holed = RandomNumberGenerator.GetBytes(3 * Block);
        var retargeted = RandomNumberGenerator.GetBytes(2 * Block);
        await using (var mount = await fs.MountAsync())
        {
            Directory.CreateDirectory(Path.Combine(mount.Path, "dir"));
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "dir", "lost"), kept);
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "holed"), holed);
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "retargeted"), retargeted);
            await File.WriteAllTextAsync(Path.Combine(mount.Path, "miscounted"), "links");
            Assert.Equal(0, await mount.UnmountAsync());
        }

        var lost = fs.InodeOf("dir/lost");
        var holedInode = fs.InodeOf("holed");
        var retargetedInode = fs.InodeOf("retargeted");
        var miscounted = fs.InodeOf("miscounted");
        // 1. A name removed: its file is lost.
        fs.Sql("DELETE FROM dirents WHERE inode = @inode", ("@inode", lost));
        // 2. A name of an inode that does not exist.
        fs.Sql("INSERT INTO dirents (parent, name, inode) VALUES (1, @name, 999999)", ("@name", "ghost"u8.ToArray()));
        // 3. A wrong link count.
        fs.Sql("UPDATE inodes SET nlink = 5 WHERE id = @inode", ("@inode", miscounted));
        // 4. A block map pointing at a cap the contents table and the store have never seen.
        var bogus = "LOCAL:" + new string('0', 64);
        var oldCap = (string)Scalar(fs, "SELECT cap FROM blocks WHERE inode = @inode AND idx = 1", retargetedInode);
        fs.Sql("UPDATE blocks SET cap = @cap WHERE inode = @inode AND idx = 1", ("@cap", bogus), ("@inode", retargetedInode));
        // 5. An object the store lost.
        var lostObject = (string)Scalar(fs, "SELECT cap FROM blocks WHERE inode = @inode AND idx = 2", holedInode);
        File.Delete(fs.ObjectPath(lostObject));
        // 6. A reference count off by three.
        var firstCap = (string)Scalar(fs, "SELECT cap FROM blocks WHERE inode = @inode AND idx = 0", holedInode);
        fs.Sql("UPDATE contents SET refs = refs + 3 WHERE cap = @cap", ("@cap", firstCap));
        // 7. An inode without links or names, as a crash with an unlinked open file leaves it.
        var unlinked = fs.Sql("INSERT INTO inodes (mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version) " +
            "VALUES (33188, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0); SELECT last_insert_rowid()");

        var (status, output, error) = await fs.RunAsync("fsck", "--json");
        Assert.True(status == 4, $"status {status}: {output}{error}");
        var findings = EmbeddedFilesystem.Json(output).GetProperty("findings").EnumerateArray()
            .Select(f => (Kind: f.GetProperty("kind").GetString()!, Subject: f.GetProperty("subject").GetString()!, Detail: f.GetProperty("detail").GetString()!)).ToList();
        Assert.Contains(findings, f => f.Kind == "lost_inode" && f.Subject == $"inode {lost}");
        Assert.Contains(findings, f => f.Kind == "dangling_entry" && f.Subject == "/ghost");
        Assert.Contains(findings, f => f.Kind == "wrong_nlink" && f.Subject == "/miscounted" && f.Detail.Contains("link count 5, its names say 1", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Kind == "unrecorded_cap" && f.Subject == bogus);
        Assert.Contains(findings, f => f.Kind == "missing_content" && f.Subject == bogus && f.Detail.Contains("/retargeted block 1", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Kind == "wrong_refcount" && f.Subject == oldCap && f.Detail.Contains("used by no block", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Kind == "missing_content" && f.Subject == lostObject && f.Detail.Contains("/holed block 2", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Kind == "wrong_refcount" && f.Subject == firstCap && f.Detail.Contains("reference count 4, used by 1", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Kind == "unlinked_inode" && f.Subject == $"inode {unlinked}");
        // A check changes nothing.
        Assert.Equal(0, fs.Sql("SELECT COUNT(*) FROM dirents WHERE inode = @inode", ("@inode", lost)));
        Assert.Equal(5, fs.Sql("SELECT nlink FROM inodes WHERE id = @inode", ("@inode", miscounted)));

        (status, output, error) = await fs.RunAsync("fsck", "--repair");
        Assert.True(status == 1, $"status {status}: {output}{error}");
        Assert.Contains($"repaired lost_inode: inode {lost}: named it /lost+found/#{lost}", output, StringComparison.Ordinal);
        Assert.Contains("repaired dangling_entry: entry", output, StringComparison.Ordinal);
        Assert.Contains("repaired wrong_nlink: /miscounted: set the link count", output, StringComparison.Ordinal);
        Assert.Contains($"repaired missing_content: {lostObject}: 1 blocks that read it now read as zeros: /holed block 2", output, StringComparison.Ordinal);
        Assert.Contains($"repaired wrong_refcount: {oldCap}: no block uses it: forgot it and deleted its object", output, StringComparison.Ordinal);
        Assert.Contains($"repaired wrong_refcount: {firstCap}: set its reference count to 1", output, StringComparison.Ordinal);
        Assert.Contains($"repaired unlinked_inode: inode {unlinked}: deleted it", output, StringComparison.Ordinal);
        Assert.Contains("problems found and repaired", output, StringComparison.Ordinal);
        Assert.False(File.Exists(fs.ObjectPath(oldCap)));

        (status, output, error) = await fs.RunAsync("fsck");
        Assert.True(status == 0, $"after repair, status {status}: {output}{error}");

        await using var again = await fs.MountAsync();
        Assert.Equal(kept, await File.ReadAllBytesAsync(Path.Combine(again.Path, "lost+found", $"#{lost}")));
        Assert.False(File.Exists(Path.Combine(again.Path, "ghost")));
        var expected = holed.ToArray();
        Array.Clear(expected, 2 * Block, Block);
        Assert.Equal(expected, await File.ReadAllBytesAsync(Path.Combine(again.Path, "holed")));
        expected = retargeted.ToArray();
        Array.Clear(expected, Block, Block);
        Assert.Equal(expected, await File.ReadAllBytesAsync(Path.Combine(again.Path, "retargeted")));
        Assert.Equal(0, Sys.Stat(Path.Combine(again.Path, "miscounted"), out var info));
        Assert.Equal(1UL, info.Nlink);
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task Repair_is_refused_while_this_host_has_the_filesystem_mounted_and_a_missing_database_is_an_error()
    {
        await using var fs = new EmbeddedFilesystem();
        var (status, _, error) = await fs.RunAsync("fsck");
        Assert.Equal(8, status);
        Assert.Contains("no filesystem to check yet", error, StringComparison.Ordinal);

        await using var mount = await fs.MountAsync();
        (status, _, error) = await fs.RunAsync("fsck", "--repair");
        Assert.Equal(8, status);
        // The embedded database belongs to the mount alone.
        Assert.Contains("in use by another truckeefs process", error, StringComparison.Ordinal);
    }

    /// <summary>What a command writes when its output is a terminal: run under script(1), which gives it a pseudo-terminal.</summary>
    private static async Task<string> OnTerminalAsync(string executable, string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var argument in (string[])["-qec", string.Join(' ', new[] { executable }.Concat(arguments).Select(a => $"'{a}'")), "/dev/null"])
            start.ArgumentList.Add(argument);
        using var process = System.Diagnostics.Process.Start(start)!;
        process.StandardInput.Close();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, output);
        return output;
    }

    private static object Scalar(EmbeddedFilesystem fs, string sql, long inode)
    {
        TruckeeFs.Meta.SqliteLibrary.EnsureLoaded();
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(fs.DataDir, "metadata.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("@inode", inode);
        return command.ExecuteScalar()!;
    }
}
