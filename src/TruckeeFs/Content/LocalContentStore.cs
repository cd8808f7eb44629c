using System.Security.Cryptography;

namespace TruckeeFs.Content;

/// <summary>
/// Contents as files in a local directory, each named by a random 256-bit id drawn when it is
/// stored. An object is never written again, so a cap always names the same bytes. (Naming by
/// the SHA-256 of the bytes would store identical blocks once, but it read every block back to
/// hash it: half the CPU of a sequential write, measured; copies share caps without it.) Caps
/// look like <c>LOCAL:&lt;64 hex digits&gt;</c>. Objects live in 256 fan-out folders to keep
/// directories small.
/// </summary>
public sealed class LocalContentStore : IContentStore
{
    private const string CapPrefix = "LOCAL:";
    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");
    private readonly string _root;

    public LocalContentStore(string root)
    {
        _root = Path.GetFullPath(root);
        for (var fanout = 0; fanout < 256; fanout++)
            Directory.CreateDirectory(Path.Combine(_root, fanout.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    public string Description => $"local {_root}";

    public bool IsLocal => true;

    // Local file I/O completes in microseconds: the calls below run synchronously on the
    // caller's thread instead of hopping through the thread pool.
    public ValueTask<string> PutAsync(string path, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var cap = CapPrefix + RandomNumberGenerator.GetHexString(64, lowercase: true);
            var target = ObjectPath(cap);
            // The staged file is complete and will not change: linking it under its final name
            // is atomic and copies nothing.
            switch (Posix.Link(path, target))
            {
                case 0:
                    return ValueTask.FromResult(cap);
                case Errno.EEXIST:
                    // Another object drew the same id (one chance in 2^256): draw again.
                    continue;
                case Errno.EXDEV or Errno.EPERM:
                    // Another filesystem: copy under a temporary name, then rename, so a crash
                    // never leaves a partial object under a real cap.
                    var temporary = $"{target}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
                    File.Copy(path, temporary);
                    File.Move(temporary, target, overwrite: false);
                    return ValueTask.FromResult(cap);
                case var error:
                    throw new ContentStoreException($"local content store {_root}: cannot store {path} (errno {error})");
            }
        }
    }

    public ValueTask<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var handle = OpenObject(cap);
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer.Span[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return ValueTask.FromResult(total);
    }

    public ValueTask DeleteAsync(string cap, CancellationToken cancellationToken = default)
    {
        try
        {
            File.Delete(ObjectPath(cap));
        }
        catch (DirectoryNotFoundException)
        {
            // Never stored: deleting an absent object succeeds.
        }
        return ValueTask.CompletedTask;
    }

    public string? LocalPath(string cap) => ObjectPath(cap);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// Every object the folder holds, with its file (for <c>truckeefs gc</c>, which looks for
    /// objects nothing references). Temporary files of copies in progress are not objects.
    /// </summary>
    public IEnumerable<(string Cap, FileInfo File)> Objects()
    {
        foreach (var fanout in new DirectoryInfo(_root).EnumerateDirectories())
        {
            foreach (var file in fanout.EnumerateFiles())
            {
                if (file.Name.Length == 64 && !file.Name.AsSpan().ContainsAnyExcept(HexDigits)) yield return (CapPrefix + file.Name, file);
            }
        }
    }

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
