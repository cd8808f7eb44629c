using System.Security.Cryptography;

namespace TruckeeFs.Content;

/// <summary>
/// Contents as files in a local directory, named by the SHA-256 of their bytes, so identical
/// blocks are stored once and a cap always names the same bytes. Caps look like
/// <c>LOCAL:&lt;64 hex digits&gt;</c>. Objects live in 256 fan-out folders to keep directories small.
/// </summary>
public sealed class LocalContentStore : IContentStore
{
    private const string CapPrefix = "LOCAL:";
    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");
    private readonly string _root;

    public LocalContentStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    public string Description => $"local {_root}";

    public async ValueTask<string> PutAsync(string path, CancellationToken cancellationToken = default)
    {
        string cap;
        using (var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
        {
            var hash = await SHA256.HashDataAsync(source, cancellationToken).ConfigureAwait(false);
            cap = CapPrefix + Convert.ToHexStringLower(hash);
        }
        var target = ObjectPath(cap);
        if (File.Exists(target)) return cap;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        // Link when the staging area is on the same filesystem (no copy); otherwise copy to a
        // temporary name and rename, so a crash never leaves a partial object under a real cap.
        var temporary = $"{target}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        if (Posix.Link(path, temporary) != 0)
            File.Copy(path, temporary);
        File.Move(temporary, target, overwrite: true);
        return cap;
    }

    public async ValueTask<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var handle = OpenObject(cap);
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await RandomAccess.ReadAsync(handle, buffer[total..], offset + total, cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public ValueTask DeleteAsync(string cap, CancellationToken cancellationToken = default)
    {
        File.Delete(ObjectPath(cap));
        return ValueTask.CompletedTask;
    }

    public string? LocalPath(string cap) => ObjectPath(cap);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private Microsoft.Win32.SafeHandles.SafeFileHandle OpenObject(string cap)
    {
        try
        {
            return File.OpenHandle(ObjectPath(cap), FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (FileNotFoundException) { throw new ContentNotFoundException(cap); }
        catch (DirectoryNotFoundException) { throw new ContentNotFoundException(cap); }
    }

    private string ObjectPath(string cap)
    {
        if (!cap.StartsWith(CapPrefix, StringComparison.Ordinal) || cap.Length != CapPrefix.Length + 64 || cap.AsSpan(CapPrefix.Length).ContainsAnyExcept(HexDigits))
            throw new ContentNotFoundException(cap);
        var hex = cap[CapPrefix.Length..];
        return Path.Combine(_root, hex[..2], hex);
    }
}
