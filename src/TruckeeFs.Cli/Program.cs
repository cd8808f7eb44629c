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
        var original = args;
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
        var background = new Option<bool>("--background", "-d") { Description = "Detach once the mount answers: exit 0 then, or non-zero with the reason if it fails." };
        var mount = new Command("mount", "Mount the filesystem and serve it in the foreground until unmounted (truckeefs umount, fusermount3 -u), SIGINT or SIGTERM." + Examples(
            "truckeefs mount /mnt/truckeefs                      # the embedded default, in the foreground",
            "truckeefs mount -d -c /etc/truckee/env.yaml         # production, detached once ready",
            "truckeefs mount /mnt/t --test-functionality true    # exercise the mount before serving it"))
        {
            mountpoint,
            background,
        };
        root.Subcommands.Add(mount);

        var init = new Command("init", "Prepare the configured backends for a first mount: create or migrate the metadata schema and, " +
            "when Tahoe-LAFS is configured without a rootcap, create one and print it. Safe to run again." + Examples(
            "truckeefs init -c /etc/truckee/env.yaml | sudo tee -a /etc/truckee/env.yaml"));
        root.Subcommands.Add(init);

        var json = new Option<bool>("--json") { Description = "Print the result as JSON on standard output." };
        var testedMount = new Argument<string?>("mountpoint") { Description = "A mounted TruckeeFS to run the functionality test in (without it that test is not run).", Arity = ArgumentArity.ZeroOrOne };
        var selftest = new Command("selftest", "Run the self-tests: compatibility (this host can run FUSE), integration (a write, read and delete round trip " +
            "with the configured database, content store and coordinator) and, given a mount point, functionality (file operations in a scratch " +
            "directory of the mount, removed afterwards). One PASS/FAIL line each; exit status 0 when all pass, 1 otherwise." + Examples(
            "truckeefs selftest -c /etc/truckee/env.yaml",
            "truckeefs selftest -c /etc/truckee/env.yaml /mnt/truckeefs --json"))
        {
            testedMount,
            json,
        };
        root.Subcommands.Add(selftest);

        var status = new Command("status", "Show whether each configured server answers, the hosts that have the filesystem mounted with the age of " +
            "their heartbeats, and each mount on this host with its cache, hit ratio, staged bytes, upload queue and failures. Exit status 0 when " +
            "every server answers, 1 otherwise." + Examples("truckeefs status -c /etc/truckee/env.yaml", "truckeefs status --json | jq .mounts"))
        {
            json,
        };
        root.Subcommands.Add(status);

        var repair = new Option<bool>("--repair") { Description = "Fix what can be fixed, and say what was done." };
        var fsck = new Command("fsck", "Check the filesystem: names of missing inodes, link counts, inodes without names, block maps naming caps the " +
            "contents table or the content store lacks, reference counts. Repair while it is not mounted anywhere. Exit status 0 clean, 1 problems " +
            "repaired, 4 problems left, 8 a server failed, 2 bad configuration." + Examples(
            "truckeefs fsck -c /etc/truckee/env.yaml",
            "truckeefs fsck -c /etc/truckee/env.yaml --repair",
            "truckeefs fsck --json | jq '.findings[].kind'"))
        {
            repair,
            json,
        };
        root.Subcommands.Add(fsck);

        var delete = new Option<bool>("--delete") { Description = "Delete what is found (without it nothing is deleted)." };
        var minimumAge = new Option<double>("--min-age") { Description = "Keep anything changed less than this many seconds ago (a running mount stores objects just before it references them).", DefaultValueFactory = _ => 3600 };
        var gc = new Command("gc", "Find content objects and cached blocks that nothing references; a dry run unless --delete is given." + Examples(
            "truckeefs gc -c /etc/truckee/env.yaml",
            "truckeefs gc -c /etc/truckee/env.yaml --delete",
            "truckeefs gc --min-age 0 --delete --json    # when no host has it mounted"))
        {
            delete,
            minimumAge,
            json,
        };
        root.Subcommands.Add(gc);

        var dryRun = new Option<bool>("--dry-run") { Description = "Only compare and list the differences; change nothing (allowed while mounted)." };
        var resync = new Command("resync", "MIRROR mode: bring the Tahoe directory tree under the rootcap into agreement with the filesystem's " +
            "names and contents: add what is missing, replace what is wrong, remove what the filesystem does not have. Each directory is listed " +
            "once and only what differs is changed; the metadata is only read. A mount does this by itself when the last mount with its cache " +
            "directory stopped with tree updates not applied. Repair while it is not mounted anywhere. Exit status 0 in step, 1 differences " +
            "repaired, 4 differences left, 8 a server failed, 2 bad configuration." + Examples(
            "truckeefs resync -c /etc/truckee/env.yaml --dry-run",
            "truckeefs resync -c /etc/truckee/env.yaml",
            "truckeefs resync --dry-run --json | jq '.differences[].path'"))
        {
            dryRun,
            json,
        };
        root.Subcommands.Add(resync);

        var unmountPoint = new Argument<string>("mountpoint") { Description = "The mount point to unmount." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the mount's process to commit its changes and exit.", DefaultValueFactory = _ => 600 };
        var umount = new Command("umount", "Flush the mount (syncfs), unmount it (fusermount3 -u), and wait until its process has committed and " +
            "uploaded what it staged and exited. Exit status 0 when it exited cleanly." + Examples("truckeefs umount /mnt/truckeefs"))
        {
            unmountPoint,
            timeout,
        };
        root.Subcommands.Add(umount);

        foreach (var command in new[] { mount, init, selftest, status, fsck, gc, resync })
        {
            foreach (var option in keyOptions.Values) command.Options.Add(option);
        }

        Dictionary<string, string> Flags(ParseResult result) => keyOptions
            .Where(pair => result.GetValue(pair.Value) is not null)
            .ToDictionary(pair => pair.Key.Name, pair => result.GetValue(pair.Value)!);

        int RunMount(ParseResult result)
        {
            if (result.GetValue(background) && !Background.IsChild) return Background.Launch(original);
            var flags = Flags(result);
            if (result.GetValue(mountpoint) is { } path) flags[ConfigKeys.Mount.Name] = path;
            return MountCommand.Run(result.GetValue(configFile), flags, verbosity);
        }

        mount.SetAction(RunMount);
        init.SetAction(result => InitCommand.Run(result.GetValue(configFile), Flags(result)));
        selftest.SetAction(result => SelftestCommand.Run(result.GetValue(configFile), Flags(result), result.GetValue(testedMount), result.GetValue(json)));
        status.SetAction(result => StatusCommand.Run(result.GetValue(configFile), Flags(result), result.GetValue(json)));
        fsck.SetAction(result => FsckCommand.Run(result.GetValue(configFile), Flags(result), result.GetValue(repair), result.GetValue(json)));
        gc.SetAction(result => GcCommand.Run(result.GetValue(configFile), Flags(result), result.GetValue(delete), result.GetValue(minimumAge), result.GetValue(json)));
        resync.SetAction(result => ResyncCommand.Run(result.GetValue(configFile), Flags(result), result.GetValue(dryRun), result.GetValue(json)));
        umount.SetAction(result => UmountCommand.Run(result.GetValue(unmountPoint)!, result.GetValue(timeout)));
        // `truckeefs -c file.yaml` mounts at the file's mount key, as the original did.
        foreach (var option in keyOptions.Values) root.Options.Add(option);
        root.Options.Add(background);
        root.SetAction(RunMount);
        return root.Parse(args).Invoke();
    }

    /// <summary>An "Examples:" paragraph for a verb's --help.</summary>
    private static string Examples(params string[] lines) =>
        Environment.NewLine + Environment.NewLine + "Examples:" + string.Concat(lines.Select(line => Environment.NewLine + "  " + line));
}
