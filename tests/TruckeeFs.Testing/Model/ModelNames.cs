using System.Text;

namespace TruckeeFs.Testing.Model;

/// <summary>The small namespace the model test draws names from: collisions are the point.</summary>
internal static class ModelNames
{
    /// <summary>Deepest level at which the model creates entries; keeps paths far below PATH_MAX whatever the root's own length.</summary>
    public const int MaxDepth = 4;

    /// <summary>One byte over NAME_MAX: every filesystem must answer ENAMETOOLONG.</summary>
    public static readonly byte[] TooLong = Encoding.ASCII.GetBytes(new string('n', 256));

    /// <summary>
    /// Names that differ only in case (a/A, dir/Dir), that are NFC/NFD twins (ü as one and as two
    /// code points), a 4-byte UTF-8 character, bytes that are not UTF-8, a space, a leading dot and
    /// a dash, and two names of exactly NAME_MAX bytes.
    /// </summary>
    public static readonly byte[][] Pool =
    [
        "a"u8.ToArray(), "A"u8.ToArray(), "b"u8.ToArray(), "c"u8.ToArray(), "C"u8.ToArray(),
        "dir"u8.ToArray(), "Dir"u8.ToArray(), "x"u8.ToArray(), "file.txt"u8.ToArray(), "FILE.TXT"u8.ToArray(),
        "sp ace"u8.ToArray(), "\u00fc"u8.ToArray(), "u\u0308"u8.ToArray(), "\U0001F600"u8.ToArray(),
        [0xff, 0xfe, (byte)'z'], "-"u8.ToArray(), ".hidden"u8.ToArray(),
        Encoding.ASCII.GetBytes(new string('L', 255)), Encoding.ASCII.GetBytes(new string('M', 254) + "m"),
    ];

    /// <summary>Symlink targets: relative and downward only, so no target can leave the root (the two roots live in different places).</summary>
    public static readonly byte[][] SymlinkTargets =
    [
        "a"u8.ToArray(), "A"u8.ToArray(), "dir"u8.ToArray(), "dir/a"u8.ToArray(), "Dir/x/b"u8.ToArray(),
        "file.txt"u8.ToArray(), "missing"u8.ToArray(), "\U0001F600"u8.ToArray(), "."u8.ToArray(), [],
    ];

    /// <summary>Extended attribute names, all in the user namespace.</summary>
    public static readonly string[] XattrNames = ["user.a", "user.b", "user.model.long-ish_name.0123456789"];

    /// <summary>Permission sets chmod and creation use (no set-id bits: whether a write clears them differs by privilege).</summary>
    public static readonly uint[] FileModes = [0b110_100_100, 0b110_000_000, 0b111_101_101, 0b100_100_100, 0b000_000_000, 0b110_110_110, 0b101_000_000];

    /// <summary>Directory permission sets, including the sticky bit.</summary>
    public static readonly uint[] DirModes = [0b111_101_101, 0b111_000_000, 0b101_101_101, 0b111_111_111 | 0x200, 0b111_111_000];

    /// <summary>A mode in octal, at least four digits ("0644"), as people read modes (.NET has no octal format specifier).</summary>
    public static string Octal(uint mode) => Convert.ToString(mode, 8).PadLeft(4, '0');

    /// <summary>Joins relative path components with '/'.</summary>
    public static byte[] Join(byte[] parent, byte[] name) => parent.Length == 0 ? name : [.. parent, (byte)'/', .. name];
}
