namespace TruckeeFs.Config;

/// <summary>What kind of value a key takes, which decides how its text is parsed.</summary>
public enum ConfigKind
{
    Text,
    Path,
    Integer,
    /// <summary>Bytes, with an optional k/m/g/t suffix (powers of 1024).</summary>
    Size,
    /// <summary>true/false/yes/no/1/0.</summary>
    Boolean,
    /// <summary>Seconds, fractions allowed.</summary>
    Seconds,
}

/// <summary>One configuration key: its canonical snake_case name, kind, default and help.</summary>
public sealed record ConfigKey(string Name, ConfigKind Kind, string? Default, string Help, bool IsSecret = false)
{
    /// <summary>The command-line form, e.g. <c>--cache-dir</c>.</summary>
    public string Flag => "--" + Name.Replace('_', '-');

    /// <summary>The prefixed environment form, e.g. <c>TRUCKEEFS_CACHE_DIR</c> (the plain name works too).</summary>
    public string EnvironmentVariable => "TRUCKEEFS_" + Name.ToUpperInvariant();
}

/// <summary>
/// Every key TruckeeFS understands. Each is accepted from the YAML file, the environment (plain
/// name or TRUCKEEFS_ form) and the command line (--kebab-case); the command line wins over the
/// environment, which wins over the file, which wins over the default.
/// </summary>
public static class ConfigKeys
{
    public static readonly ConfigKey Mount = new("mount", ConfigKind.Path, null, "Mount point (the mount command's argument takes precedence).");
    public static readonly ConfigKey DataDir = new("data_dir", ConfigKind.Path, null, "Folder of the embedded metadata database and local content store (default: $XDG_DATA_HOME/truckeefs, else ~/.local/share/truckeefs).");
    public static readonly ConfigKey CacheDir = new("cache_dir", ConfigKind.Path, null, "Folder of cached blocks and staged changes (default: <data_dir>/cache).");
    public static readonly ConfigKey BlockSize = new("block_size", ConfigKind.Size, "4m", "Size of the immutable blocks file contents are stored in (64k to 64m).");
    public static readonly ConfigKey AttrTimeout = new("attr_timeout", ConfigKind.Seconds, "1", "How long the kernel may cache file attributes, in seconds.");
    public static readonly ConfigKey EntryTimeout = new("entry_timeout", ConfigKind.Seconds, "1", "How long the kernel may cache names, in seconds.");
    public static readonly ConfigKey MountOptions = new("mount_options", ConfigKind.Text, "fsname=TruckeeFS,default_permissions",
        "FUSE mount options, comma separated (allow_other is added when running as root).");
    public static readonly ConfigKey LogFile = new("log_file", ConfigKind.Path, null, "Write the log to this file instead of standard error.");

    public static IReadOnlyList<ConfigKey> All { get; } = [Mount, DataDir, CacheDir, BlockSize, AttrTimeout, EntryTimeout, MountOptions, LogFile];

    public static ConfigKey? Find(string name) => All.FirstOrDefault(k => k.Name == name);
}
