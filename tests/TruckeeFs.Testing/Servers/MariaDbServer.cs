using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using MySql.Data.MySqlClient;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// A real MariaDB server (<c>mariadbd</c>) on 127.0.0.1 for tests, with a fresh data folder made
/// by <c>mariadb-install-db</c>, a database <see cref="Database"/> and a password user
/// <see cref="User"/> that tests log in as (real authentication, over TCP). Data survives
/// <see cref="LoopbackServer.Stop"/>/<see cref="LoopbackServer.Start"/>.
/// <see cref="Shared"/> serves the whole test run; tests isolate themselves with
/// <see cref="CreateDatabase"/>.
/// </summary>
public sealed partial class MariaDbServer : LoopbackServer
{
    private static readonly Lazy<MariaDbServer> SharedServer = new(() => Create(isShared: true));
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromSeconds(120);

    // Small InnoDB files and buffers: a test server holds kilobytes, and the default 96 MiB redo
    // log would be written out for every server started.
    private static readonly string[] InnoDbSizes = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"];

    private readonly string _binary;
    private readonly string _dataDirectory;

    private MariaDbServer(bool isShared)
        : base("mariadb", isShared)
    {
        _binary = ServerBinaries.Find("mariadb-server", "mariadbd", "mysqld");
        _dataDirectory = Path.Combine(WorkingDirectory, "data");
        Password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
    }

    /// <summary>The server every test of this run shares; started on first use.</summary>
    public static MariaDbServer Shared => SharedServer.Value;

    /// <summary>The database made at start; tests that need their own use <see cref="CreateDatabase"/>.</summary>
    public string Database => "truckeefs";

    public string User => "truckee";

    /// <summary>Random for each server.</summary>
    public string Password { get; }

    /// <summary>A MySql.Data connection string for <see cref="Database"/> as <see cref="User"/>.</summary>
    public string ConnectionString => ConnectionStringFor(Database);

    /// <summary>Starts a dedicated server; the caller disposes it.</summary>
    public static MariaDbServer StartNew() => Create(isShared: false);

    /// <summary>A MySql.Data connection string for <paramref name="database"/> as <see cref="User"/>.</summary>
    public string ConnectionStringFor(string database) => new MySqlConnectionStringBuilder
    {
        Server = Host,
        Port = (uint)Port,
        Database = database,
        UserID = User,
        Password = Password,
        SslMode = MySqlSslMode.None,
        CharacterSet = "utf8mb4",
    }.ConnectionString;

    /// <summary>
    /// Creates the empty database <paramref name="name"/> (letters, digits, underscores) and
    /// returns a connection string for it. Fails if it exists, so two tests cannot share one by
    /// accident.
    /// </summary>
    public string CreateDatabase(string name)
    {
        if (!DatabaseName().IsMatch(name)) throw new ArgumentException($"'{name}' is not a plain database name.", nameof(name));
        using var connection = new MySqlConnection(ConnectionStringFor(""));
        connection.Open();
        using var command = new MySqlCommand($"CREATE DATABASE `{name}`", connection);
        command.ExecuteNonQuery();
        return ConnectionStringFor(name);
    }

    private static MariaDbServer Create(bool isShared)
    {
        var server = new MariaDbServer(isShared);
        try
        {
            server.InstallDataDirectory();
            server.Launch(port: 0);
            server.CreateUserAndDatabase();
            return server;
        }
        catch
        {
            server.Destroy();
            throw;
        }
    }

    private void InstallDataDirectory()
    {
        var installer = ServerBinaries.Find("mariadb-server", "mariadb-install-db", "mysql_install_db");
        List<string> arguments =
        [
            "--no-defaults",
            $"--datadir={_dataDirectory}",
            // Root logs in without a password over loopback, only to create the test user.
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            .. InnoDbSizes,
        ];
        if (Libc.IsRoot) arguments.Add("--user=root");
        // The bootstrap server now and then dies while several start at once (one run in many):
        // a second attempt on an emptied folder, before calling the machine unfit.
        for (var attempt = 1; ; attempt++)
        {
            var output = new List<string>();
            using var process = ProcessLauncher.Start(installer, arguments, WorkingDirectory, line => { lock (output) output.Add(line); });
            var finished = process.WaitForExit(InstallTimeout);
            if (!finished) process.Kill();
            process.WaitForExit();
            if (finished && process.ExitCode == 0) return;
            if (attempt < 2 && finished)
            {
                if (Directory.Exists(_dataDirectory)) Directory.Delete(_dataDirectory, recursive: true);
                continue;
            }
            string tail;
            // The server's own error lines come before the long advice the installer prints after them.
            lock (output) tail = string.Join('\n', output.Where(line => line.Contains("ERROR", StringComparison.Ordinal) || line.Contains("signal", StringComparison.OrdinalIgnoreCase)).Take(20).Concat(output.TakeLast(40)));
            throw new ServerStartException(
                $"{Path.GetFileName(installer)} could not create a data folder " +
                (finished ? $"(exit code {process.ExitCode}, attempt {attempt})" : $"within {InstallTimeout.TotalSeconds} s") + ".\n" +
                $"Command: {ProcessLauncher.Describe(installer, arguments)}\nLast output:\n{tail}");
        }
    }

    private protected override ServerProcess CreateProcess(int port)
    {
        List<string> arguments =
        [
            "--no-defaults",
            $"--datadir={_dataDirectory}",
            $"--socket={Path.Combine(WorkingDirectory, "mysqld.sock")}",
            $"--pid-file={Path.Combine(WorkingDirectory, ServerDirectories.PidFileName)}",
            $"--tmpdir={WorkingDirectory}",
            string.Create(CultureInfo.InvariantCulture, $"--port={port}"),
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            // What Debian's own configuration sets, which --no-defaults skips.
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            // Commits reach the OS at once (so they survive the server being killed) but are
            // synced to disk once a second: tests commit a lot and never lose power.
            "--innodb-flush-log-at-trx-commit=2",
            .. InnoDbSizes,
        ];
        // mariadbd refuses to run as root unless told to.
        if (Libc.IsRoot) arguments.Add("--user=root");
        return new ServerProcess(_binary, arguments, WorkingDirectory, port);
    }

    private protected override bool IsReady()
    {
        using var connection = new MySqlConnection(RootConnectionString());
        connection.Open();
        using var command = new MySqlCommand("SELECT 1", connection);
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 1;
    }

    private void CreateUserAndDatabase()
    {
        using var connection = new MySqlConnection(RootConnectionString());
        connection.Open();
        // The password is hex, so it needs no quoting beyond the literal's.
        using var command = new MySqlCommand(
            $"CREATE USER '{User}'@'127.0.0.1' IDENTIFIED BY '{Password}';" +
            $"GRANT ALL PRIVILEGES ON *.* TO '{User}'@'127.0.0.1';" +
            $"CREATE DATABASE `{Database}`;", connection);
        command.ExecuteNonQuery();
    }

    /// <summary>Root over TCP without a password and without pooling: only for readiness and setup.</summary>
    private string RootConnectionString() => new MySqlConnectionStringBuilder
    {
        Server = Host,
        Port = (uint)Port,
        UserID = "root",
        SslMode = MySqlSslMode.None,
        Pooling = false,
        ConnectionTimeout = 2,
    }.ConnectionString;

    [GeneratedRegex("^[A-Za-z0-9_]{1,64}$")]
    private static partial Regex DatabaseName();
}
