using System.Runtime.InteropServices;

namespace TruckeeFs.Meta;

/// <summary>
/// The SQLite library the embedded metadata database runs on: the system's libsqlite3, called
/// through SQLitePCLRaw's e_sqlite3 provider (its calls are the standard sqlite3 API under
/// another library name). Debian's build writes with pwrite(2), where the build SQLitePCLRaw
/// bundles seeks before every write: every WAL frame costs half the system calls, and a
/// metadata transaction about a quarter less CPU (measured on the 2-core machine this runs on).
/// </summary>
internal static class SqliteLibrary
{
    private const string SystemLibrary = "libsqlite3.so.0";
    private static readonly Lock Gate = new();
    private static bool _ready;

    /// <summary>Loads the library once per process; throws <see cref="MetaStoreException"/> naming the package when it is missing.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_ready) return;
            if (!NativeLibrary.TryLoad(SystemLibrary, out var handle))
                throw new MetaStoreException($"the SQLite library {SystemLibrary} is not installed (Debian and Ubuntu: apt-get install libsqlite3-0)");
            NativeLibrary.SetDllImportResolver(typeof(SQLitePCL.SQLite3Provider_e_sqlite3).Assembly,
                (name, _, _) => name == "e_sqlite3" ? handle : IntPtr.Zero);
            SQLitePCL.raw.SetProvider(new SQLitePCL.SQLite3Provider_e_sqlite3());
            SqliteWalVfs.Register(handle);
            _ready = true;
        }
    }
}
