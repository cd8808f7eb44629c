using System.Globalization;
using System.Text;

namespace TruckeeFs.Testing.Posix;

/// <summary>
/// A path as the kernel sees it: bytes, NUL-terminated. Converts implicitly from a string
/// (encoded as UTF-8) and from a byte array (taken as is), so every <see cref="Sys"/> call accepts
/// both without a second overload; byte paths are how tests reach names that are not valid UTF-8.
/// </summary>
public readonly struct PosixPath : IEquatable<PosixPath>
{
    private readonly byte[]? _terminated;

    /// <summary>Copies <paramref name="path"/> and appends the terminating NUL.</summary>
    /// <exception cref="ArgumentException">The path contains a NUL byte: that is a bug in the caller, not a filesystem answer.</exception>
    public PosixPath(ReadOnlySpan<byte> path)
    {
        if (path.Contains((byte)0))
        {
            throw new ArgumentException("A path cannot contain a NUL byte.", nameof(path));
        }

        _terminated = new byte[path.Length + 1];
        path.CopyTo(_terminated);
    }

    /// <summary>The path's bytes without the terminating NUL.</summary>
    public ReadOnlySpan<byte> Bytes => Terminated[..^1];

    /// <summary>The bytes with their NUL, ready to pin and pass to libc.</summary>
    internal byte[] Terminated => _terminated ?? [0];

    /// <summary>Encodes <paramref name="path"/> as UTF-8.</summary>
    public static implicit operator PosixPath(string path) => FromString(path);

    /// <summary>Takes <paramref name="path"/>'s bytes as they are.</summary>
    public static implicit operator PosixPath(byte[] path) => FromBytes(path);

    /// <summary>Encodes <paramref name="path"/> as UTF-8.</summary>
    public static PosixPath FromString(string path) => new(Encoding.UTF8.GetBytes(path));

    /// <summary>Takes <paramref name="path"/>'s bytes as they are.</summary>
    public static PosixPath FromBytes(byte[] path) => new(path);

    /// <summary><paramref name="directory"/> + "/" + <paramref name="name"/>, in bytes.</summary>
    public static PosixPath Combine(PosixPath directory, ReadOnlySpan<byte> name)
    {
        var dir = directory.Bytes;
        var joined = new byte[dir.Length + 1 + name.Length];
        dir.CopyTo(joined);
        joined[dir.Length] = (byte)'/';
        name.CopyTo(joined.AsSpan(dir.Length + 1));
        return new PosixPath(joined);
    }

    /// <inheritdoc/>
    public bool Equals(PosixPath other) => Bytes.SequenceEqual(other.Bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PosixPath other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(Bytes);
        return hash.ToHashCode();
    }

    /// <summary>Equal when the bytes are equal.</summary>
    public static bool operator ==(PosixPath left, PosixPath right) => left.Equals(right);

    /// <summary>Different when the bytes differ.</summary>
    public static bool operator !=(PosixPath left, PosixPath right) => !left.Equals(right);

    /// <summary>The path for messages: UTF-8 where valid, invalid bytes shown as \xNN.</summary>
    public override string ToString() => Escape(Bytes);

    /// <summary>Renders bytes for a message: printable ASCII and valid UTF-8 as text, other bytes as \xNN.</summary>
    public static string Escape(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(bytes.Length);
        var rest = bytes;
        while (!rest.IsEmpty)
        {
            var status = System.Text.Rune.DecodeFromUtf8(rest, out var rune, out var consumed);
            if (status == System.Buffers.OperationStatus.Done && rune.Value >= 0x20 && rune.Value != '\\' && rune.Value != 0x7f)
            {
                text.Append(rune.ToString());
            }
            else
            {
                for (var i = 0; i < consumed; i++)
                {
                    text.Append(CultureInfo.InvariantCulture, $"\\x{rest[i]:x2}");
                }
            }

            rest = rest[consumed..];
        }

        return text.ToString();
    }
}
