using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>Every verb explains itself with examples, through the real executable.</summary>
public sealed class HelpTests
{
    [Theory]
    [InlineData("mount", "truckeefs mount -d -c /etc/truckee/env.yaml")]
    [InlineData("init", "truckeefs init -c /etc/truckee/env.yaml")]
    [InlineData("selftest", "truckeefs selftest -c /etc/truckee/env.yaml /mnt/truckeefs --json")]
    [InlineData("status", "truckeefs status -c /etc/truckee/env.yaml")]
    [InlineData("fsck", "truckeefs fsck -c /etc/truckee/env.yaml --repair")]
    [InlineData("gc", "truckeefs gc -c /etc/truckee/env.yaml --delete")]
    [InlineData("resync", "truckeefs resync -c /etc/truckee/env.yaml --dry-run")]
    [InlineData("umount", "truckeefs umount /mnt/truckeefs")]
    public async Task Each_verb_has_help_with_examples(string verb, string example)
    {
        var (status, output, error) = await TruckeeFsCli.RunAsync(null, verb, "--help");
        Assert.True(status == 0, output + error);
        Assert.Contains("Examples:", output, StringComparison.Ordinal);
        Assert.Contains(example, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_top_level_help_lists_every_verb()
    {
        var (status, output, error) = await TruckeeFsCli.RunAsync(null, "--help");
        Assert.True(status == 0, output + error);
        foreach (var verb in new[] { "mount", "init", "selftest", "status", "fsck", "gc", "resync", "umount" })
            Assert.Matches($@"(?m)^\s+{verb}\b", output);
    }
}
