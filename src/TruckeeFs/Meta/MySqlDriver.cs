using System.Collections.Concurrent;
using System.Text;
using MySql.Data.MySqlClient;

namespace TruckeeFs.Meta;

/// <summary>
/// Process-wide adjustments MySql.Data 8.0.16 needs, made once before its first use (its own
/// static set-up runs at that first use, and one of these must come before it).
/// </summary>
public static class MySqlDriver
{
    private static readonly Lazy<bool> Prepared = new(() =>
    {
        Encoding.RegisterProvider(new RememberedEncodings());
        AliasUtf8Mb3();
        return true;
    });

    public static void Prepare() => _ = Prepared.Value;

    /// <summary>
    /// MariaDB since 10.6 names its system character set "utf8mb3" (column names, SHOW
    /// WARNINGS, system variables), and MySql.Data 8.0.16 asks for results in each column's own
    /// character set but knows that set only as "utf8": reading such a column throws, and
    /// leaves the connection's protocol stream out of step. Any statement that raises a note
    /// (CREATE DATABASE or TABLE IF NOT EXISTS when it exists) makes the driver read SHOW
    /// WARNINGS, so opening an existing database failed. Teach the driver the new name.
    /// </summary>
    private static void AliasUtf8Mb3()
    {
        var map = typeof(MySqlConnection).Assembly.GetType("MySql.Data.MySqlClient.CharSetMap")
            ?.GetField("_mapping", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)
            ?.GetValue(null) as System.Collections.IDictionary
            ?? throw new InvalidOperationException("MySql.Data's character set map is not where version 8.0.16 keeps it; check the utf8mb3 alias against this version");
        if (!map.Contains("utf8mb3")) map["utf8mb3"] = map["utf8"];
    }

    /// <summary>
    /// MySql.Data looks up an <see cref="Encoding"/> by name for every column of every result
    /// (binary and numeric columns ask for "us-ascii"), and registers .NET's code-page provider,
    /// which is asked before the built-in encodings and answers each such lookup by reading its
    /// code-page table from a resource stream, only to decline. On MariaDB that was 6% of the
    /// mount's CPU while creating small files. Registered ahead of it, this provider remembers
    /// each name's answer, so the table is read once per name.
    /// </summary>
    internal sealed class RememberedEncodings : EncodingProvider
    {
        [ThreadStatic] private static bool t_resolving;
        private readonly ConcurrentDictionary<string, Encoding> _byName = new(StringComparer.OrdinalIgnoreCase);
        private int _resolved;

        /// <summary>How many times a name was looked up through the usual chain.</summary>
        internal int Resolved => Volatile.Read(ref _resolved);

        public override Encoding? GetEncoding(string name)
        {
            if (_byName.TryGetValue(name, out var known)) return known;
            if (t_resolving) return null;
            t_resolving = true;
            try
            {
                Interlocked.Increment(ref _resolved);
                // With this provider stepping aside, the usual chain answers; unknown names throw
                // here and again, with the caller's own exception, when this returns null.
                return _byName.GetOrAdd(name, Encoding.GetEncoding(name));
            }
            catch (ArgumentException)
            {
                return null;
            }
            finally
            {
                t_resolving = false;
            }
        }

        public override Encoding? GetEncoding(int codepage) => null;
    }
}
