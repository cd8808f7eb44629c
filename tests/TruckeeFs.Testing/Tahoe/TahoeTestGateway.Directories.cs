using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TruckeeFs.Testing.Tahoe;

public sealed partial class TahoeTestGateway
{
    private const string ThingMoved = "thing moved";

    /// <summary>A child given in a JSON body (mkdir-with-children, mkdir-immutable, set_children).</summary>
    private sealed record GivenChild(string Name, DirectoryEntry Entry, bool MetadataGiven);

    private static GatewayResponse DirectoryHead() => new GatewayResponse { Kind = GatewayRequestKind.Info, Chunked = true }.Header("Content-Type", "text/html");

    private GatewayResponse DirectoryGet(GatewayRequest request, Located located)
    {
        var node = located.Node!;
        var cap = node.Cap!;
        var t = request.T;
        switch (t)
        {
            case "uri":
                return CapText(node.CapText, null);
            case "readonly-uri":
                return CapText(cap.ReadOnly().ToString(), null);
        }
        var directory = OpenDirectory(cap);
        if (directory is null)
        {
            if (t == "json")
            {
                // Tahoe renders this failure as JSON, yet labels it text/html.
                var error = GatewayResponse.Streamed(TahoeDirectoryFormat.PythonJson(new JsonObject { ["error"] = TahoeWebException.UnrecoverableMessage }), 410);
                return error;
            }
            throw TahoeWebException.Html(410, "Error", TahoeWebException.UnrecoverableMessage);
        }
        var modifiable = directory.Writable ? "modifiable" : cap.IsMutable ? "read-only" : "immutable";
        return t switch
        {
            "" => GatewayResponse.Page($"Tahoe-LAFS - Directory SI={SiPrefix(cap, 5)} ({modifiable})", ListingHtml(directory)),
            "json" => DirectoryJson(request, directory),
            "info" => GatewayResponse.Page($"More Info for directory (SI={SiPrefix(cap, 6)})", "<h1>More Info</h1>"),
            _ => throw TahoeWebException.Text(400, $"GET directory: bad t={t}"),
        };
    }

    private static string ListingHtml(DirectoryView directory) =>
        "<table>\n" + string.Concat(directory.Children.Keys.Order(TahoeDirectoryFormat.CodePointOrder)
            .Select(name => $"<tr><td>{System.Net.WebUtility.HtmlEncode(name)}</td></tr>\n")) + "</table>";

    private GatewayResponse DirectoryJson(GatewayRequest request, DirectoryView directory)
    {
        var cap = directory.Cap;
        var etag = cap.Format == CapFormat.Chk ? $"DIR:{cap.StorageIndexText}-json" : null;
        if (etag is not null && request.Header("If-None-Match") is { } match && (match == etag || match == "*"))
            return new GatewayResponse { Status = 304, Kind = GatewayRequestKind.Info }.Header("ETag", etag);
        var children = new JsonObject();
        foreach (var (name, entry) in directory.Children.OrderBy(c => c.Key, TahoeDirectoryFormat.CodePointOrder))
            children[name] = ChildJson(directory, entry);
        var info = new JsonObject { ["children"] = children, ["ro_uri"] = cap.ReadOnly().ToString() };
        if (directory.Writable) info["rw_uri"] = cap.ToString();
        if (cap.Verifier() is { } verifier) info["verify_uri"] = verifier.ToString();
        info["mutable"] = cap.IsMutable;
        var response = Json(new JsonArray("dirnode", info));
        if (etag is not null) response.Header("ETag", etag);
        return response;
    }

    /// <summary>
    /// A child as a listing shows it: immutable files carry their size, mutable ones do not
    /// (finding it needs the grid), and write caps show only through a writable parent.
    /// </summary>
    private static JsonArray ChildJson(DirectoryView parent, DirectoryEntry entry)
    {
        var write = parent.Writable ? entry.WriteCap : null;
        if (entry.Cap is not { } cap)
        {
            var unknown = new JsonObject { ["metadata"] = entry.Metadata() };
            if (write is not null) unknown["rw_uri"] = write;
            unknown["ro_uri"] = entry.ReadCap;
            return new JsonArray("unknown", unknown);
        }
        var info = new JsonObject { ["mutable"] = cap.IsMutable };
        if (!cap.IsDirectory)
        {
            info["format"] = FormatName(cap);
            if (!cap.IsMutable) info["size"] = cap.Size;
        }
        info["metadata"] = entry.Metadata();
        if (write is not null) info["rw_uri"] = write;
        info["ro_uri"] = cap.ReadOnly().ToString();
        if (cap.Verifier() is { } verifier) info["verify_uri"] = verifier.ToString();
        return new JsonArray(cap.IsDirectory ? "dirnode" : "filenode", info);
    }

    private GatewayResponse Post(GatewayRequest request, Located located)
    {
        var t = request.T;
        var node = located.Node;
        if (node is null)
        {
            return t switch
            {
                "mkdir" => MkdirChild(request, located.Parent!, located.Name!, ParseReplace(request), plainText: false),
                "upload" => UploadFormChild(request, located.Parent!, located.Name!),
                _ => throw TahoeWebException.Text(400, $"POST to a file: bad t={t}"),
            };
        }
        if (node.Cap is null) throw TahoeWebException.Text(400, $"POST to an unknown node: bad t={t}");
        if (!node.IsDirectory)
        {
            return t switch
            {
                "check" => Check(request, node.Cap),
                _ => throw TahoeWebException.Text(400, $"POST to file: bad t={t}"),
            };
        }
        if (t == "check") return Check(request, node.Cap);
        var directory = OpenDirectory(node.Cap) ?? throw TahoeWebException.Html(410, "Error", TahoeWebException.UnrecoverableMessage);
        return t switch
        {
            "mkdir" => string.IsNullOrEmpty(request.Arg("name"))
                ? MkdirResponse(request, node.Cap)
                : MkdirChild(request, directory, Nfc(request.Arg("name")!), ParseReplace(request), plainText: false),
            "mkdir-with-children" => MkdirWithChildren(request, directory),
            "mkdir-immutable" => MkdirImmutableChild(request, directory),
            "rename" => Rename(request, directory),
            "relink" => Relink(request, directory),
            "unlink" or "delete" => Unlink(request, directory),
            "uri" => LinkCap(request, directory, Nfc(RequiredArg(request, "name", t)), RequiredArg(request, "uri", t), ParseReplace(request)),
            "set_children" or "set-children" => SetChildren(request, directory),
            "upload" => UploadFormChild(request, directory, Nfc(RequiredArg(request, "name", t))),
            "stream-manifest" => StreamManifest(node, deepCheck: false),
            "stream-deep-check" => StreamManifest(node, deepCheck: true),
            "start-deep-size" or "start-deep-stats" or "start-manifest" or "start-deep-check" => StartOperation(request, node, t),
            _ => throw TahoeWebException.Text(400, $"POST to a directory with bad t={t}"),
        };
    }

    private static string Nfc(string name) => UnicodeComposition.ComposeNfc(name);

    private static string RequiredArg(GatewayRequest request, string name, string t) =>
        request.Arg(name) ?? throw TahoeWebException.Text(400, $"t={t} requires {name}=");

    private GatewayResponse MkdirChild(GatewayRequest request, DirectoryView parent, string name, Replace replace, bool plainText)
    {
        var format = ParseDirectoryFormat(request, "t=mkdir");
        RequireWritable(request, parent);
        if (parent.Children.ContainsKey(name) && replace == Replace.No) throw TahoeWebException.Existing();
        var created = _grid.CreateDirectory(format);
        SetChild(parent, name, created, null, replace);
        var response = plainText ? GatewayResponse.Text(200, created.ToString(), "text/plain") : GatewayResponse.Streamed(created.ToString());
        response.Kind = GatewayRequestKind.Mkdir;
        return response;
    }

    private GatewayResponse MkdirWithChildren(GatewayRequest request, DirectoryView parent)
    {
        var name = Nfc(RequiredArg(request, "name", "mkdir-with-children"));
        var kids = ParseChildren(request);
        RequireWritable(request, parent);
        // Unlike t=mkdir, this never replaces an existing name.
        if (parent.Children.ContainsKey(name)) throw TahoeWebException.Existing();
        var created = _grid.CreateDirectory(ParseDirectoryFormat(request, "t=mkdir-with-children"), kids.ToDictionary(k => k.Name, k => k.Entry, StringComparer.Ordinal));
        SetChild(parent, name, created, null, Replace.No);
        var response = GatewayResponse.Streamed(created.ToString());
        response.Kind = GatewayRequestKind.Mkdir;
        return response;
    }

    private GatewayResponse MkdirImmutableChild(GatewayRequest request, DirectoryView parent)
    {
        var name = Nfc(RequiredArg(request, "name", "mkdir-immutable"));
        var created = CreateImmutableDirectory(request);
        RequireWritable(request, parent);
        if (parent.Children.ContainsKey(name)) throw TahoeWebException.Existing();
        SetChild(parent, name, created, null, Replace.No);
        var response = GatewayResponse.Streamed(created.ToString());
        response.Kind = GatewayRequestKind.Mkdir;
        return response;
    }

    /// <summary>Packs the given children into a DIR2-LIT or DIR2-CHK cap; every child must be deeply immutable.</summary>
    private TahoeCapability CreateImmutableDirectory(GatewayRequest request)
    {
        var kids = ParseChildren(request);
        foreach (var kid in kids)
        {
            var cap = TahoeCapability.Parse(kid.Entry.ReadCap);
            var immutable = kid.Entry.WriteCap is null
                && (cap is { IsMutable: false } || (cap is null && kid.Entry.ReadCap.StartsWith("imm.", StringComparison.Ordinal)));
            if (!immutable)
                throw TahoeWebException.Text(400, $"MustBeDeepImmutableError: a cap passed to this operation for the child named '{kid.Name}', needed to be immutable but was not. Either the cap is being added to an immutable directory, or it was originally retrieved from an immutable directory as an unknown cap.");
        }
        var packed = TahoeDirectoryFormat.PackImmutable(kids.ToDictionary(k => k.Name, k => k.Entry, StringComparer.Ordinal));
        return _grid.StoreImmutable(packed, isDirectory: true);
    }

    /// <summary>Reads a children body: <c>{NAME: [type, {ro_uri, rw_uri, metadata}]}</c>. The tahoe metadata key is ignored.</summary>
    private static List<GivenChild> ParseChildren(GatewayRequest request)
    {
        if (request.Body.All(b => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')) return [];
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(request.Body);
        }
        catch (JsonException e)
        {
            throw JsonDecodeError(request, e);
        }
        if (root is not JsonObject children) throw TahoeWebException.Text(400, "children must be a JSON object");
        var result = new List<GivenChild>();
        foreach (var (rawName, value) in children)
        {
            var name = Nfc(rawName);
            if (value is not JsonArray { Count: 2 } pair || pair[1] is not JsonObject props)
                throw TahoeWebException.Text(400, $"bad child description for '{name}'");
            var write = props["rw_uri"]?.GetValue<string>();
            var read = props["ro_uri"]?.GetValue<string>();
            if (write is not null && TahoeCapability.Parse(write) is { Access: CapAccess.Write } writeCap)
                read ??= writeCap.ReadOnly().ToString();
            if (read is null) throw TahoeWebException.Text(400, $"child '{name}' has no usable cap");
            var metadata = props["metadata"] as JsonObject;
            var user = new JsonObject();
            if (metadata is not null)
                foreach (var (key, item) in metadata)
                    if (key != "tahoe") user[key] = item?.DeepClone();
            result.Add(new GivenChild(name, new DirectoryEntry { WriteCap = write, ReadCap = read, User = user }, metadata is not null));
        }
        return result;
    }

    private GatewayResponse SetChildren(GatewayRequest request, DirectoryView directory)
    {
        var kids = ParseChildren(request);
        var replace = ParseReplace(request);
        RequireWritable(request, directory);
        if (replace == Replace.No && kids.Any(k => directory.Children.ContainsKey(k.Name))) throw TahoeWebException.Existing();
        foreach (var kid in kids)
            SetChild(directory, kid.Name, kid.Entry.WriteCap, kid.Entry.ReadCap, kid.MetadataGiven ? kid.Entry.User : null, replace);
        var response = GatewayResponse.Streamed("Okay so I did it.");
        response.Kind = GatewayRequestKind.DirectoryChange;
        return response;
    }

    private GatewayResponse Unlink(GatewayRequest request, DirectoryView directory)
    {
        var name = Nfc(RequiredArg(request, "name", request.T));
        RequireWritable(request, directory);
        if (!directory.Children.Remove(name)) throw TahoeWebException.Text(404, $"No such child: {name}");
        Touch(directory);
        var response = GatewayResponse.Streamed("thing unlinked");
        response.Kind = GatewayRequestKind.DirectoryChange;
        return response;
    }

    /// <summary>Renames within one directory. Names are stripped, like Tahoe's; the link keeps user metadata and gets new link times.</summary>
    private GatewayResponse Rename(GatewayRequest request, DirectoryView directory)
    {
        if (request.HasArg("to_dir")) throw TahoeWebException.Text(400, "to_dir= is not valid for rename");
        var from = Nfc(RequiredArg(request, "from_name", "rename").Trim());
        var to = Nfc((request.Arg("to_name") ?? throw TahoeWebException.Text(400, "to_name= is required for rename")).Trim());
        if (to.Contains('/', StringComparison.Ordinal)) throw TahoeWebException.Text(400, "to_name= may not contain a slash");
        var replace = ParseReplace(request);
        return Move(request, directory, from, directory, to, replace);
    }

    /// <summary>Moves a link to another directory (to_dir=CAP[/path]): the new link is made before the old one is removed.</summary>
    private GatewayResponse Relink(GatewayRequest request, DirectoryView directory)
    {
        var from = Nfc(RequiredArg(request, "from_name", "relink").Trim());
        var to = Nfc((request.Arg("to_name") ?? from).Trim());
        if (to.Contains('/', StringComparison.Ordinal)) throw TahoeWebException.Text(400, "to_name= may not contain a slash");
        var replace = ParseReplace(request);
        var target = directory;
        if (request.Arg("to_dir") is { } toDir)
        {
            var parts = toDir.Split('/');
            var node = NodeFor(parts[0]);
            foreach (var part in parts.Skip(1).Where(p => p.Length > 0))
            {
                if (!node.IsDirectory) throw TahoeWebException.Text(400, "to_dir is not a directory");
                var view = OpenDirectory(node.Cap!) ?? throw TahoeWebException.Text(410, TahoeWebException.UnrecoverableMessage);
                var name = Nfc(part);
                if (!view.Children.TryGetValue(name, out var entry)) throw TahoeWebException.Text(404, $"No such child: {name}");
                node = ChildNode(view, entry);
            }
            if (!node.IsDirectory) throw TahoeWebException.Text(400, "to_dir is not a directory");
            target = OpenDirectory(node.Cap!) ?? throw TahoeWebException.Text(410, TahoeWebException.UnrecoverableMessage);
        }
        return Move(request, directory, from, target, to, replace);
    }

    private GatewayResponse Move(GatewayRequest request, DirectoryView source, string from, DirectoryView target, string to, Replace replace)
    {
        RequireWritable(request, source);
        RequireWritable(request, target);
        if (!source.Children.TryGetValue(from, out var entry)) throw TahoeWebException.Text(404, $"No such child: {from}");
        if (!ReferenceEquals(source.Slot, target.Slot) || from != to)
        {
            SetChild(target, to, entry.WriteCap, entry.ReadCap, entry.User, replace, resetTimes: true);
            source.Children.Remove(from);
            Touch(source);
        }
        var response = GatewayResponse.Streamed(ThingMoved);
        response.Kind = GatewayRequestKind.DirectoryChange;
        return response;
    }

    private GatewayResponse UploadFormChild(GatewayRequest request, DirectoryView parent, string name)
    {
        var data = MultipartFile(request) ?? throw TahoeWebException.Text(400, "t=upload requires a 'file' form field");
        RequireWritable(request, parent);
        var replace = ParseReplace(request);
        var cap = StoreFile(request, data);
        SetChild(parent, name, cap, null, replace);
        var response = GatewayResponse.Streamed(cap.ToString());
        response.Kind = GatewayRequestKind.Upload;
        return response;
    }
}
