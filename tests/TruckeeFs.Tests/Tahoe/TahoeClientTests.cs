using System.Net;
using TruckeeFs.Content.Tahoe;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// The directory operations of <see cref="TahoeClient"/> (for MIRROR mode and <c>truckeefs
/// init</c>), against the gateway under test (a real one when TRUCKEEFS_TEST_TAHOE_URL is set).
/// </summary>
public sealed class TahoeClientTests : IAsyncLifetime
{
    private const string SomeLiteral = "URI:LIT:gaytemzugu3doobz";
    private readonly TahoeGatewayUnderTest _gateway = new();
    private TahoeClient _client = null!;

    public async Task InitializeAsync()
    {
        await _gateway.InitializeAsync();
        _client = new TahoeClient(new TahoeOptions { TahoeUrl = _gateway.Url, NetTimeout = TimeSpan.FromSeconds(10) });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task A_new_directory_is_empty_and_writable()
    {
        var dir = await _client.CreateDirectoryAsync();
        Assert.StartsWith("URI:DIR2:", dir, StringComparison.Ordinal);
        var listing = await _client.ListAsync(dir);
        Assert.Equal(dir, listing.WriteCap);
        Assert.StartsWith("URI:DIR2-RO:", listing.ReadCap, StringComparison.Ordinal);
        Assert.True(listing.Mutable);
        Assert.Empty(listing.Children);
    }

    [Fact]
    public async Task Linked_caps_are_listed_with_size_and_link_times()
    {
        var dir = await _client.CreateDirectoryAsync();
        await _client.LinkAsync(dir, "file.txt", SomeLiteral);
        var entry = (await _client.ListAsync(dir)).Children["file.txt"];
        Assert.Equal(TahoeNodeKind.File, entry.Kind);
        Assert.Equal(SomeLiteral, entry.Cap);
        Assert.Equal(10, entry.Size);
        Assert.False(entry.Mutable);
        Assert.True(entry.Metadata.GetProperty("tahoe").GetProperty("linkcrtime").GetDouble() > 0);
    }

    [Fact]
    public async Task Linking_without_replace_refuses_an_existing_name_with_tahoes_message()
    {
        var dir = await _client.CreateDirectoryAsync();
        await _client.LinkAsync(dir, "x", SomeLiteral);
        var error = await Assert.ThrowsAsync<TahoeRequestException>(() => _client.LinkAsync(dir, "x", "URI:LIT:", replace: false));
        Assert.Equal(HttpStatusCode.Conflict, error.Status);
        Assert.Contains("There was already a child by that name", error.Message, StringComparison.Ordinal);
        await _client.LinkAsync(dir, "x", "URI:LIT:");
        Assert.Equal("URI:LIT:", (await _client.ListAsync(dir)).Children["x"].Cap);
    }

    [Fact]
    public async Task Mkdir_creates_missing_parents_and_keeps_existing_directories()
    {
        var root = await _client.CreateDirectoryAsync();
        var deep = await _client.MkdirAsync(root, "a/b");
        var a = (await _client.ListAsync(root)).Children["a"];
        Assert.Equal(TahoeNodeKind.Directory, a.Kind);
        Assert.Equal(deep, (await _client.ListAsync(a.Cap!)).Children["b"].Cap);
        Assert.Equal(deep, await _client.MkdirAsync(root, "a/b"));
    }

    [Fact]
    public async Task Mkdir_over_a_file_is_refused()
    {
        var root = await _client.CreateDirectoryAsync();
        await _client.LinkAsync(root, "f", SomeLiteral);
        var error = await Assert.ThrowsAsync<TahoeRequestException>(() => _client.MkdirAsync(root, "f"));
        Assert.Equal(HttpStatusCode.BadRequest, error.Status);
    }

    [Fact]
    public async Task Rename_moves_a_name_within_a_directory()
    {
        var dir = await _client.CreateDirectoryAsync();
        await _client.LinkAsync(dir, "old", SomeLiteral);
        await _client.LinkAsync(dir, "other", "URI:LIT:");
        await Assert.ThrowsAsync<TahoeRequestException>(() => _client.RenameAsync(dir, "old", "other", replace: false));
        await _client.RenameAsync(dir, "old", "new");
        var children = (await _client.ListAsync(dir)).Children;
        Assert.Equal(["new", "other"], children.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(SomeLiteral, children["new"].Cap);
    }

    [Fact]
    public async Task Rename_refuses_names_tahoe_would_strip()
    {
        var dir = await _client.CreateDirectoryAsync();
        await Assert.ThrowsAsync<ArgumentException>(() => _client.RenameAsync(dir, "a", " b"));
        await Assert.ThrowsAsync<ArgumentException>(() => _client.RenameAsync(dir, "a", "b/c"));
    }

    [Fact]
    public async Task Renaming_a_missing_child_reports_not_found()
    {
        var dir = await _client.CreateDirectoryAsync();
        var error = await Assert.ThrowsAsync<TahoeRequestException>(() => _client.RenameAsync(dir, "missing", "x"));
        Assert.Equal(HttpStatusCode.NotFound, error.Status);
        Assert.Contains("No such child: missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Relink_moves_a_child_between_directories()
    {
        var root = await _client.CreateDirectoryAsync();
        var sub = await _client.MkdirAsync(root, "sub");
        await _client.LinkAsync(root, "f", SomeLiteral);
        await _client.RelinkAsync(root, "f", sub, "g");
        Assert.False((await _client.ListAsync(root)).Children.ContainsKey("f"));
        Assert.Equal(SomeLiteral, (await _client.ListAsync(sub)).Children["g"].Cap);
        await _client.RelinkAsync(sub, "g", root + "/sub", "h");
        Assert.True((await _client.ListAsync(sub)).Children.ContainsKey("h"));
    }

    [Fact]
    public async Task Unlink_returns_the_cap_and_a_second_unlink_is_not_found()
    {
        var dir = await _client.CreateDirectoryAsync();
        await _client.LinkAsync(dir, "f", SomeLiteral);
        Assert.Equal(SomeLiteral, await _client.UnlinkAsync(dir, "f"));
        var error = await Assert.ThrowsAsync<TahoeRequestException>(() => _client.UnlinkAsync(dir, "f"));
        Assert.Equal(HttpStatusCode.NotFound, error.Status);
        Assert.Contains("No such child: f", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Names_round_trip_including_spaces_and_non_ascii()
    {
        var dir = await _client.CreateDirectoryAsync();
        string[] names = ["with space", "h\u00e9llo w\u00f6rld", "\u65e5\u672c", "\U0001F600.txt", "100%", "a+b", "q?#"];
        foreach (var name in names) await _client.LinkAsync(dir, name, SomeLiteral);
        Assert.Equal(names.Order(StringComparer.Ordinal), (await _client.ListAsync(dir)).Children.Keys.Order(StringComparer.Ordinal));
        foreach (var name in names) Assert.Equal(SomeLiteral, await _client.UnlinkAsync(dir, name));
    }

    [Fact]
    public async Task Dot_names_are_refused_before_sending()
    {
        var dir = await _client.CreateDirectoryAsync();
        await Assert.ThrowsAsync<ArgumentException>(() => _client.LinkAsync(dir, "..", SomeLiteral));
        await Assert.ThrowsAsync<ArgumentException>(() => _client.UnlinkAsync(dir, "a/./b"));
    }

    [Fact]
    public async Task Files_of_unknown_size_are_read_up_to_their_end()
    {
        // A mutable file's cap carries no size, so the client cannot avoid asking past the end.
        using var http = new HttpClient();
        using var created = await http.PutAsync(new Uri(_gateway.Url, "uri?format=MDMF"), new ByteArrayContent("mutable contents"u8.ToArray()));
        var cap = (await created.Content.ReadAsStringAsync()).Trim();
        var buffer = new byte[100];
        Assert.Equal(16, await _client.ReadAsync(cap, 0, buffer));
        Assert.Equal("mutable contents"u8.ToArray(), buffer[..16]);
        Assert.Equal(8, await _client.ReadAsync(cap, 8, buffer));
        Assert.Equal(0, await _client.ReadAsync(cap, 16, buffer));
    }

    [Fact]
    public async Task Writing_through_a_read_only_directory_fails_without_retrying()
    {
        var dir = await _client.CreateDirectoryAsync();
        var readOnly = (await _client.ListAsync(dir)).ReadCap;
        var error = await Assert.ThrowsAsync<TahoeRequestException>(() => _client.LinkAsync(readOnly, "x", SomeLiteral));
        Assert.Equal(HttpStatusCode.InternalServerError, error.Status);
        Assert.Contains("NotWriteableError", error.Message, StringComparison.Ordinal);
    }
}
