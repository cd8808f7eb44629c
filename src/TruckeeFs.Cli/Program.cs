using System.CommandLine;
using TruckeeFs.Config;

namespace TruckeeFs.Cli;

/// <summary>
/// The <c>truckeefs</c> command. Exit status: 0 success, 1 a failure at run time (mount or
/// backend), 2 unusable configuration or arguments.
/// </summary>
internal static class Program
{
    public const int Failure = 1;
    public const int BadConfiguration = 2;

    private static int Main(string[] args)
    {
        // -v, -vv and -vvv raise the log level; counted here because they stack.
        var verbosity = args.Where(a => a.Length > 1 && a[0] == '-' && a.AsSpan(1).Trim('v').IsEmpty).Sum(a => a.Length - 1);
        args = [.. args.Where(a => !(a.Length > 1 && a[0] == '-' && a.AsSpan(1).Trim('v').IsEmpty))];

        var configFile = new Option<string?>("--config", "-c") { Description = "YAML configuration file.", Recursive = true };
        var keyOptions = ConfigKeys.All.ToDictionary(k => k, k => new Option<string?>(k.Flag)
        {
            Description = k.Help + (k.Default is null ? "" : $" [default: {k.Default}]"),
            HelpName = k.Kind == ConfigKind.Choice ? string.Join('|', k.Choices) : k.Kind.ToString().ToLowerInvariant(),
        });

        var root = new RootCommand("TruckeeFS: a POSIX filesystem whose names live in SQL and whose contents live in Tahoe-LAFS (or, by default, on local disk).")
        {
            configFile,
        };
        root.Options.Add(new Option<bool>("-v") { Description = "More log output: -v info, -vv debug, -vvv trace." });

        var mountpoint = new Argument<string?>("mountpoint") { Description = "Where to mount (default: the mount key).", Arity = ArgumentArity.ZeroOrOne };
        var mount = new Command("mount", "Mount the filesystem and serve it in the foreground until unmounted (fusermount3 -u), SIGINT or SIGTERM.")
        {
            mountpoint,
        };
        foreach (var option in keyOptions.Values) mount.Options.Add(option);
        root.Subcommands.Add(mount);

        var init = new Command("init", "Prepare the configured backends for a first mount: create or migrate the metadata schema and, " +
            "when Tahoe-LAFS is configured without a rootcap, create one and print it. Safe to run again.");
        foreach (var option in keyOptions.Values) init.Options.Add(option);
        root.Subcommands.Add(init);

        Dictionary<string, string> Flags(ParseResult result) => keyOptions
            .Where(pair => result.GetValue(pair.Value) is not null)
            .ToDictionary(pair => pair.Key.Name, pair => result.GetValue(pair.Value)!);

        int RunMount(ParseResult result)
        {
            var flags = Flags(result);
            if (result.GetValue(mountpoint) is { } path) flags[ConfigKeys.Mount.Name] = path;
            return MountCommand.Run(result.GetValue(configFile), flags, verbosity);
        }

        mount.SetAction(RunMount);
        init.SetAction(result => InitCommand.Run(result.GetValue(configFile), Flags(result)));
        // `truckeefs -c file.yaml` mounts at the file's mount key, as the original did.
        foreach (var option in keyOptions.Values) root.Options.Add(option);
        root.SetAction(RunMount);
        return root.Parse(args).Invoke();
    }
}
