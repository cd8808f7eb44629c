namespace TruckeeFs.Testing.Mounting;

/// <summary>How <see cref="TruckeeFsMount.StartAsync"/> starts <c>truckeefs mount</c>.</summary>
public sealed class TruckeeFsMountOptions
{
    /// <summary>Where to mount; null: a new temp directory, removed on dispose.</summary>
    public string? MountPoint { get; init; }

    /// <summary>
    /// --data-dir; null: a new temp directory deleted on dispose. Pass a directory of your own
    /// (see <see cref="Posix.TempDirectory"/>) to mount the same filesystem again after an unmount.
    /// </summary>
    public string? DataDir { get; init; }

    /// <summary>--cache-dir; null: a new temp directory deleted on dispose. Pass your own to keep it across mounts.</summary>
    public string? CacheDir { get; init; }

    /// <summary>Arguments appended after the data and cache directories, such as "--block-size", "64k".</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];

    /// <summary>Environment variables for the child; a null value removes the variable.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>Adds -v so the child logs in detail (its output is in <see cref="TruckeeFsMount.Output"/>).</summary>
    public bool Verbose { get; init; }

    /// <summary>How long to wait for the mount to appear before failing.</summary>
    public TimeSpan MountTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The program to start: by default the <c>truckeefs</c> apphost in the CLI project's own
    /// build output (the build records where; a copy beside the tests would run with the test
    /// host's dependencies instead of its own). The fixture's own tests point it at a stand-in
    /// that mounts bindfs.
    /// </summary>
    public string Executable { get; init; } = DefaultExecutable;

    /// <summary>The CLI project's build output, recorded by this assembly's build.</summary>
    public static string DefaultExecutable { get; } =
        typeof(TruckeeFsMountOptions).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>()
            .Single(a => a.Key == "TruckeeFsExecutable").Value!;
}
