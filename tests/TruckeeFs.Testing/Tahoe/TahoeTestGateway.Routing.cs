using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TruckeeFs.Testing.Tahoe;

public sealed partial class TahoeTestGateway
{
    private const string UnknownCapMessage =
        "GET unknown URI type: can only do t=info and t=json, not t={0}.\nUsing a webapi server that supports a later version of Tahoe may help.";

    private static readonly JsonSerializerOptions PrettyJson = new()
    {
        WriteIndented = true,
        IndentSize = 1,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private enum Replace { Yes, No, OnlyFiles }

    /// <summary>A node reached by cap or path: its cap string as this path grants it, and the link that led to it.</summary>
    private sealed record Node(string CapText, TahoeCapability? Cap, DirectoryEntry? Entry)
    {
        public bool IsDirectory => Cap is { IsDirectory: true, Access: not CapAccess.Verify };
        public bool IsFile => Cap is { IsDirectory: false, Access: not CapAccess.Verify };
        public bool IsVerifier => Cap is { Access: CapAccess.Verify };
    }

    /// <summary>Where a path led: an existing node (with the directory and name it hangs from), or a missing last name.</summary>
    private sealed record Located(Node? Node, DirectoryView? Parent, string? Name);

    /// <summary>An opened directory: its links (live for mutable directories) and whether this cap may change them.</summary>
    private sealed class DirectoryView(TahoeCapability cap, Dictionary<string, DirectoryEntry> children, MutableSlot? slot)
    {
        public TahoeCapability Cap { get; } = cap;
        public Dictionary<string, DirectoryEntry> Children { get; } = children;
        public MutableSlot? Slot { get; } = slot;
        public bool Writable => Slot is not null && Cap.Access == CapAccess.Write;
    }

    private GatewayResponse Route(GatewayRequest request)
    {
        if (request.Method is not ("GET" or "HEAD" or "PUT" or "POST" or "DELETE"))
            throw TahoeWebException.Html(501, "Huh?", $"I don't know how to treat a {request.Method} request.");
        var path = request.Path;
        if (path == "/") return Welcome(request);
        if (path is "/statistics" or "/statistics/") return Statistics(request);
        if (path is "/status" or "/status/") return StatusPage(request);
        if (path == "/uri") return UnlinkedRequest(request);
        if (path == "/uri/") return GatewayResponse.Redirect(302, "/uri", chunked: false);
        if (path.StartsWith("/uri/", StringComparison.Ordinal) || path.StartsWith("/cap/", StringComparison.Ordinal))
            return NodeRequest(request, path[5..], namedFile: false);
        if (path.StartsWith("/named/", StringComparison.Ordinal))
            return NodeRequest(request, path[7..], namedFile: true);
        if (path.StartsWith("/operations/", StringComparison.Ordinal))
            return Operation(request, path[12..]);
        throw TahoeWebException.Html(404, "No Such Resource", "Sorry. No luck finding that resource.");
    }

    private GatewayResponse NodeRequest(GatewayRequest request, string rest, bool namedFile)
    {
        var segments = rest.Split('/').Select(s => GatewayRequest.PercentDecode(s) ?? throw ProcessingFailed()).ToList();
        var root = NodeFor(segments[0]);
        var names = segments.Skip(1).ToList();
        if (namedFile)
        {
            // /named/CAP/NAME: NAME only chooses the Content-Type.
            if (request.Method is not ("GET" or "HEAD")) throw TahoeWebException.Text(400, "/named/ serves GET only");
            return Get(request, new Located(root, null, names.LastOrDefault()), HttpHead(request));
        }
        var t = request.T;
        var creates = request.Method is "PUT" or "POST" && t is not ("delete" or "rename" or "rename-form" or "check");
        var located = Walk(request, root, names, creates);
        return request.Method switch
        {
            "GET" or "HEAD" => located.Node is null ? throw TahoeWebException.NoSuchChildHtml(located.Name!) : Get(request, located, HttpHead(request)),
            "PUT" => Put(request, located),
            "POST" => Post(request, located),
            _ => Delete(request, located),
        };
    }

    private static bool HttpHead(GatewayRequest request) => request.Method == "HEAD";

    private static TahoeWebException ProcessingFailed() => new(
        GatewayResponse.Text(500, "<html><head><title>Processing Failed</title></head><body><b>Processing Failed</b></body></html>", "text/html"),
        "Processing Failed");

    private static Node NodeFor(string capText) => new(capText, TahoeCapability.Parse(capText), null);

    private static Node ChildNode(DirectoryView parent, DirectoryEntry entry)
    {
        var text = parent.Writable && entry.WriteCap is not null ? entry.WriteCap : entry.ReadCap;
        return new Node(text, TahoeCapability.Parse(text), entry);
    }

    private Located Walk(GatewayRequest request, Node root, List<string> names, bool createIntermediate)
    {
        var node = root;
        DirectoryView? parent = null;
        string? name = null;
        for (var i = 0; i < names.Count; i++)
        {
            var last = i == names.Count - 1;
            if (names[i].Length == 0)
            {
                if (last) break;
                throw TahoeWebException.Html(400, "Error", "The webapi does not allow empty pathname components, i.e. a double slash");
            }
            var childName = UnicodeComposition.ComposeNfc(names[i]);
            if (!node.IsDirectory)
            {
                var message = createIntermediate && node.IsFile
                    ? $"Cannot create directory '{childName}', because its parent is a file, not a directory"
                    : $"Files have no children named '{childName}'";
                throw TahoeWebException.Html(400, message, "no details");
            }
            var directory = OpenDirectory(node.Cap!) ?? throw TahoeWebException.Html(410, "Error", TahoeWebException.UnrecoverableMessage);
            if (directory.Children.TryGetValue(childName, out var entry))
            {
                var child = ChildNode(directory, entry);
                if (!last && createIntermediate && !child.IsDirectory)
                    throw TahoeWebException.Html(409, $"Unable to create directory '{childName}': a file was in the way", "no details");
                (node, parent, name) = (child, directory, childName);
            }
            else if (last)
            {
                return new Located(null, directory, childName);
            }
            else if (createIntermediate)
            {
                RequireWritable(request, directory);
                var created = _grid.CreateDirectory(CapFormat.Sdmf);
                SetChild(directory, childName, created, null, Replace.Yes);
                (node, parent, name) = (ChildNode(directory, directory.Children[childName]), directory, childName);
            }
            else
            {
                throw TahoeWebException.NoSuchChildHtml(childName);
            }
        }
        return new Located(node, parent, name);
    }

    /// <summary>Opens a directory; null when it is mutable and the grid has no shares of it.</summary>
    private DirectoryView? OpenDirectory(TahoeCapability cap)
    {
        if (cap.IsMutable)
            return _grid.FindMutable(cap) is { Children: { } children } slot ? new DirectoryView(cap, children, slot) : null;
        if (_grid.ReadImmutable(cap) is not { } packed) return null;
        return TahoeDirectoryFormat.UnpackImmutable(packed) is { } unpacked ? new DirectoryView(cap, unpacked, null) : null;
    }

    private static void RequireWritable(GatewayRequest request, DirectoryView directory)
    {
        if (!directory.Writable) throw TahoeWebException.Traceback(request, TahoeWebException.NotWriteable);
    }

    /// <summary>
    /// Links a child, as Tahoe's set_node does: replace rules first, then user metadata (new, or
    /// kept from the old link when <paramref name="user"/> is null) and link times (creation
    /// kept from the old link, modification now).
    /// </summary>
    private void SetChild(DirectoryView directory, string name, TahoeCapability cap, JsonObject? user, Replace replace, bool resetTimes = false)
    {
        var write = cap.Access == CapAccess.Write ? cap.ToString() : null;
        SetChild(directory, name, write, cap.ReadOnly().ToString(), user, replace, resetTimes);
    }

    private void SetChild(DirectoryView directory, string name, string? writeCap, string readCap, JsonObject? user, Replace replace, bool resetTimes = false)
    {
        directory.Children.TryGetValue(name, out var existing);
        if (existing is not null)
        {
            if (replace == Replace.No) throw TahoeWebException.Existing();
            if (replace == Replace.OnlyFiles && existing.Cap is { IsDirectory: true }) throw TahoeWebException.Existing();
        }
        var now = Now();
        directory.Children[name] = new DirectoryEntry
        {
            WriteCap = writeCap,
            ReadCap = readCap,
            User = user ?? existing?.User ?? [],
            LinkCreated = resetTimes ? now : existing?.LinkCreated ?? now,
            LinkModified = now,
        };
        Touch(directory);
    }

    private void Touch(DirectoryView directory)
    {
        directory.Slot!.Sequence++;
        _grid.Published(TahoeDirectoryFormat.PackedSize(directory.Children));
    }

    private static Replace ParseReplace(GatewayRequest request)
    {
        var value = request.Arg("replace");
        if (value is null) return Replace.Yes;
        return value.ToLowerInvariant() switch
        {
            "true" or "t" or "1" or "on" or "yes" => Replace.Yes,
            "false" or "f" or "0" or "off" or "no" => Replace.No,
            "only-files" => Replace.OnlyFiles,
            _ => throw TahoeWebException.Text(400, $"invalid replace= argument: '{value}'"),
        };
    }

    /// <summary>The format= (or legacy mutable=true) of a new object; null means immutable.</summary>
    private static CapFormat? ParseFormat(GatewayRequest request)
    {
        var format = request.Arg("format");
        if (format is not null)
        {
            return format.ToUpperInvariant() switch
            {
                "CHK" => null,
                "SDMF" => CapFormat.Sdmf,
                "MDMF" => CapFormat.Mdmf,
                _ => throw TahoeWebException.Text(400, $"Unknown format: {format}, I know CHK, SDMF, MDMF"),
            };
        }
        return string.Equals(request.Arg("mutable"), "true", StringComparison.OrdinalIgnoreCase) ? CapFormat.Sdmf : null;
    }

    private static CapFormat ParseDirectoryFormat(GatewayRequest request, string operation)
    {
        var format = ParseFormat(request);
        if (request.Arg("format") is { } given && format is null)
            throw TahoeWebException.Text(400, $"format={given.ToUpperInvariant()} not currently accepted for {operation}");
        return format ?? CapFormat.Sdmf;
    }

    private static GatewayResponse Json(JsonNode node, string contentType = "text/plain", bool chunked = false, bool trailingNewline = true)
    {
        var text = node.ToJsonString(PrettyJson) + (trailingNewline ? "\n" : "");
        var response = GatewayResponse.Text(200, text, contentType);
        response.Chunked = chunked;
        response.Kind = GatewayRequestKind.Info;
        return response;
    }

    private static string FormatName(TahoeCapability cap) => cap.Format switch
    {
        CapFormat.Sdmf => "SDMF",
        CapFormat.Mdmf => "MDMF",
        _ => "CHK",
    };

    /// <summary>Unexpected-exception text for a body that is not JSON, worded as Python's json module words it.</summary>
    private static TahoeWebException JsonDecodeError(GatewayRequest request, JsonException error)
    {
        var text = Encoding.UTF8.GetString(request.Body);
        var line = (int)(error.LineNumber ?? 0);
        var column = (int)(error.BytePositionInLine ?? 0);
        var lines = text.Split('\n');
        var position = lines.Take(line).Sum(l => l.Length + 1) + column;
        var before = text[..Math.Min(position, text.Length)].TrimEnd();
        var expected = before.EndsWith('{') || before.EndsWith(',') ? "Expecting property name enclosed in double quotes" : "Expecting value";
        return TahoeWebException.Traceback(request, "json.decoder.JSONDecodeError", $"{expected}: line {line + 1} column {column + 1} (char {position})");
    }
}
