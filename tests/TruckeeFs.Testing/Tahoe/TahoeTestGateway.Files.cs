using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace TruckeeFs.Testing.Tahoe;

public sealed partial class TahoeTestGateway
{
    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".txt"] = "text/plain", [".html"] = "text/html", [".htm"] = "text/html", [".css"] = "text/css",
        [".js"] = "application/javascript", [".json"] = "application/json", [".xml"] = "text/xml",
        [".pdf"] = "application/pdf", [".png"] = "image/png", [".jpg"] = "image/jpeg", [".jpeg"] = "image/jpeg",
        [".gif"] = "image/gif", [".svg"] = "image/svg+xml", [".zip"] = "application/zip", [".tar"] = "application/x-tar",
        [".bin"] = "application/octet-stream", [".mp3"] = "audio/mpeg", [".mp4"] = "video/mp4",
    };

    private GatewayResponse Get(GatewayRequest request, Located located, bool head)
    {
        var node = located.Node!;
        var t = request.T;
        if (node.Cap is null)
        {
            if (t == "json") return Json(new JsonArray("unknown", new JsonObject()));
            throw TahoeWebException.Text(400, string.Format(CultureInfo.InvariantCulture, UnknownCapMessage, t));
        }
        if (node.IsVerifier)
        {
            // Tahoe 1.18 builds a verifier node that its JSON renderer cannot describe.
            if (t == "json") throw TahoeWebException.Traceback(request, "builtins.AttributeError", "'NoneType' object has no attribute 'get_uri'");
            throw TahoeWebException.Text(400, string.Format(CultureInfo.InvariantCulture, UnknownCapMessage, t));
        }
        if (node.IsDirectory) return head ? DirectoryHead() : DirectoryGet(request, located);
        if (head && t.Length > 0) throw TahoeWebException.Text(400, $"GET file: bad t={t}");
        return t switch
        {
            "" => Download(request, node.Cap, request.Arg("filename") ?? located.Name, head),
            "json" => FileJson(request, located),
            "uri" => CapText(node.CapText, node.Cap.Format == CapFormat.Chk ? node.Cap.StorageIndexText + "-uri" : null),
            "readonly-uri" => CapText(node.Cap.ReadOnly().ToString(), null),
            "info" => GatewayResponse.Page($"More Info for {(node.Cap.IsMutable ? "mutable" : "immutable")} file (SI={SiPrefix(node.Cap, 6)})", "<h1>More Info</h1>"),
            _ => throw TahoeWebException.Text(400, $"GET file: bad t={t}"),
        };
    }

    private static string SiPrefix(TahoeCapability cap, int length) => cap.StorageIndexText[..Math.Min(length, cap.StorageIndexText.Length)];

    private static GatewayResponse CapText(string cap, string? etag)
    {
        var response = GatewayResponse.Text(200, cap, "text/plain");
        response.Kind = GatewayRequestKind.Info;
        if (etag is not null) response.Header("ETag", etag);
        return response;
    }

    /// <summary>Serves file data with Tahoe's own Range rules (see shared/tahoe-wapi/README.md).</summary>
    private GatewayResponse Download(GatewayRequest request, TahoeCapability cap, string? filename, bool head)
    {
        long size;
        string? etag = null;
        byte[]? data = null;
        if (cap.IsMutable)
        {
            // A mutable file's size needs the grid, so a lost one fails before any header is chosen.
            var slot = _grid.FindMutable(cap) ?? throw TahoeWebException.Text(410, TahoeWebException.UnrecoverableMessage);
            data = slot.Contents;
            size = data.Length;
        }
        else
        {
            size = cap.Size;
            if (cap.Format == CapFormat.Chk) etag = cap.StorageIndexText + "-";
        }
        if (etag is not null && !head && request.Header("If-None-Match") is { } match && (match == etag || match == "*"))
            return new GatewayResponse { Status = 304 }.Header("ETag", etag);

        var response = new GatewayResponse { Kind = head ? GatewayRequestKind.Info : GatewayRequestKind.Download };
        var extension = Path.GetExtension(filename ?? "");
        response.Header("Content-Type", ContentTypes.GetValueOrDefault(extension, "text/plain"));
        if (IsTrue(request.Arg("save")))
            response.Header("Content-Disposition", $"attachment; filename=\"{filename}\"");
        response.Header("Accept-Ranges", "bytes");
        var (status, first, last) = ParseRange(Faults.IgnoreRanges ? null : request.Header("Range"), size);
        if (status == 416)
        {
            response.Status = 416;
            response.Header("Content-Type", "text/plain;charset=utf-8");
            response.Body = "First beyond end of file"u8.ToArray();
            if (etag is not null && !head) response.Header("ETag", etag);
            response.HeadLength = response.Body.Length;
            response.Kind = GatewayRequestKind.Other;
            return response;
        }
        if (status == 206)
        {
            response.Status = 206;
            response.Header("Content-Range", string.Create(CultureInfo.InvariantCulture, $"bytes {first}-{last}/{size}"));
        }
        response.HeadLength = last - first + 1;
        if (head) return response;
        if (etag is not null) response.Header("ETag", etag);
        data ??= _grid.ReadImmutable(cap);
        if (data is null)
        {
            response.Status = 410;
            response.Header("Content-Type", "text/plain;charset=utf-8");
            response.Body = Encoding.UTF8.GetBytes(TahoeWebException.NoSharesMessage);
            response.Kind = GatewayRequestKind.Other;
            return response;
        }
        response.Body = data.AsSpan((int)first, (int)(last - first + 1)).ToArray();
        _grid.FilesDownloaded++;
        _grid.BytesDownloaded += response.Body.Length;
        return response;
    }

    /// <summary>
    /// Tahoe parses one byte range by hand: only the first of several is served, an unparsable
    /// or reversed range (and "a-" starting at or past the end) is ignored and the whole file
    /// sent, "a-b" starting past the end is 416, and a suffix longer than the file is the file.
    /// </summary>
    private static (int Status, long First, long Last) ParseRange(string? header, long size)
    {
        var whole = (200, 0L, size - 1);
        if (header is null || !header.StartsWith("bytes=", StringComparison.Ordinal)) return whole;
        var spec = header[6..].Split(',')[0].Trim();
        var dash = spec.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0) return whole;
        var startText = spec[..dash];
        var endText = spec[(dash + 1)..];
        if (startText.Length == 0)
        {
            if (!long.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var suffix) || suffix == 0) return whole;
            return (206, Math.Max(0, size - suffix), size - 1);
        }
        if (!long.TryParse(startText, NumberStyles.None, CultureInfo.InvariantCulture, out var start)) return whole;
        if (endText.Length == 0) return start >= size ? whole : (206, start, size - 1);
        if (!long.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var end) || end < start) return whole;
        if (start >= size) return (416, 0, -1);
        return (206, start, Math.Min(end, size - 1));
    }

    private static bool IsTrue(string? value) => value?.ToLowerInvariant() is "true" or "t" or "1" or "on" or "yes";

    private GatewayResponse FileJson(GatewayRequest request, Located located)
    {
        var cap = located.Node!.Cap!;
        var info = new JsonObject { ["mutable"] = cap.IsMutable, ["format"] = FormatName(cap) };
        string? etag = null;
        if (cap.IsMutable)
        {
            if (_grid.FindMutable(cap) is { } slot) info["size"] = slot.Contents.Length;
        }
        else
        {
            info["size"] = cap.Size;
            if (cap.Format == CapFormat.Chk) etag = cap.StorageIndexText + "-json";
        }
        if (etag is not null && request.Header("If-None-Match") is { } match && (match == etag || match == "*"))
            return new GatewayResponse { Status = 304, Kind = GatewayRequestKind.Info }.Header("ETag", etag);
        info["ro_uri"] = cap.ReadOnly().ToString();
        if (cap.Access == CapAccess.Write) info["rw_uri"] = cap.ToString();
        if (cap.Verifier() is { } verifier) info["verify_uri"] = verifier.ToString();
        if (located.Node.Entry is { } entry) info["metadata"] = entry.Metadata();
        var response = Json(new JsonArray("filenode", info));
        if (etag is not null) response.Header("ETag", etag);
        return response;
    }

    private GatewayResponse Put(GatewayRequest request, Located located)
    {
        var t = request.T;
        var replace = ParseReplace(request);
        var node = located.Node;
        if (node is null)
        {
            var parent = located.Parent!;
            if (request.Header("Content-Range") is not null)
                throw TahoeWebException.Text(501, "Content-Range in PUT not yet supported");
            return t switch
            {
                "" => UploadChild(request, parent, located.Name!, replace, created: true),
                "uri" => LinkCap(request, parent, located.Name!, Encoding.UTF8.GetString(request.Body).Trim(), replace),
                "mkdir" => MkdirChild(request, parent, located.Name!, replace, plainText: true),
                _ => throw TahoeWebException.Text(400, $"PUT to a file: bad t={t}"),
            };
        }
        if (node.IsDirectory)
        {
            return t switch
            {
                "mkdir" => CapText(node.CapText, null),
                "uri" when located.Parent is not null => replace == Replace.Yes
                    ? LinkCap(request, located.Parent, located.Name!, Encoding.UTF8.GetString(request.Body).Trim(), replace)
                    : throw TahoeWebException.Existing(),
                "" => throw TahoeWebException.Text(400, "PUT to a directory"),
                _ => throw TahoeWebException.Text(400, $"PUT to a directory: bad t={t}"),
            };
        }
        switch (t)
        {
            case "":
                var offset = ParseOffset(request);
                if (replace == Replace.No) throw TahoeWebException.Existing();
                if (node.Cap is { IsMutable: true } mutable)
                    return WriteMutable(request, mutable, offset);
                if (offset is not null)
                    throw TahoeWebException.Text(400, "PUT to a file: append operation invoked on an immutable cap");
                if (located.Parent is null) throw TahoeWebException.Traceback(request, TahoeWebException.AssertionError);
                return UploadChild(request, located.Parent, located.Name!, replace, created: false);
            case "uri":
                if (located.Parent is null) throw TahoeWebException.Traceback(request, TahoeWebException.AssertionError);
                if (replace == Replace.No) throw TahoeWebException.Existing();
                return LinkCap(request, located.Parent, located.Name!, Encoding.UTF8.GetString(request.Body).Trim(), replace);
            default:
                throw TahoeWebException.Text(400, $"PUT to a file: bad t={t}");
        }
    }

    private static long? ParseOffset(GatewayRequest request)
    {
        if (request.Arg("offset") is not { } text) return null;
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset))
            throw TahoeWebException.Traceback(request, "builtins.ValueError", $"invalid literal for int() with base 10: b'{text}'");
        if (offset < 0) throw TahoeWebException.Text(400, "PUT to a mutable file: Invalid offset");
        return offset;
    }

    /// <summary>Overwrites a mutable file in place, whole or from an offset within [0, size].</summary>
    private GatewayResponse WriteMutable(GatewayRequest request, TahoeCapability cap, long? offset)
    {
        if (cap.Access != CapAccess.Write)
            throw TahoeWebException.Text(400, "PUT to a mutable file: replace or update requested with read-only cap");
        var slot = _grid.FindMutable(cap) ?? throw TahoeWebException.Text(410, TahoeWebException.UnrecoverableMessage);
        if (offset is { } at)
        {
            if (at > slot.Contents.Length) throw TahoeWebException.Traceback(request, TahoeWebException.AssertionError);
            var updated = new byte[Math.Max(slot.Contents.Length, at + request.Body.Length)];
            slot.Contents.CopyTo(updated, 0);
            request.Body.CopyTo(updated, at);
            slot.Contents = updated;
        }
        else
        {
            slot.Contents = request.Body;
        }
        slot.Sequence++;
        _grid.Published(slot.Contents.Length);
        Counters.Uploaded(request.Body.Length);
        var response = GatewayResponse.Streamed(cap.ToString());
        response.Kind = GatewayRequestKind.Upload;
        return response;
    }

    private TahoeCapability StoreFile(GatewayRequest request, byte[] data)
    {
        var format = ParseFormat(request);
        Counters.Uploaded(data.Length);
        return format is { } mutable ? _grid.CreateMutableFile(mutable, data) : _grid.StoreImmutable(data);
    }

    private GatewayResponse UploadChild(GatewayRequest request, DirectoryView parent, string name, Replace replace, bool created)
    {
        RequireWritable(request, parent);
        if (replace == Replace.No && parent.Children.ContainsKey(name)) throw TahoeWebException.Existing();
        var cap = StoreFile(request, request.Body);
        SetChild(parent, name, cap, null, replace);
        var response = GatewayResponse.Streamed(cap.ToString(), created ? 201 : 200);
        response.Kind = GatewayRequestKind.Upload;
        return response;
    }

    /// <summary>Links an existing cap (t=uri). Unknown caps go only into the read slot, and only when marked ro. or imm.</summary>
    private GatewayResponse LinkCap(GatewayRequest request, DirectoryView parent, string name, string capText, Replace replace)
    {
        var cap = TahoeCapability.Parse(capText);
        if (cap is null or { Access: CapAccess.Verify })
        {
            if (!capText.StartsWith("ro.", StringComparison.Ordinal) && !capText.StartsWith("imm.", StringComparison.Ordinal))
                throw TahoeWebException.Text(400, $"MustNotBeUnknownRWError: an operation to add a child named '{name}' to a directory was given an unknown cap in a write slot.\nUsing a webapi server that supports a later version of Tahoe may help.\n\nIf you are using the webapi directly, specifying a readcap in the read slot (ro_uri) of the JSON PROPDICT, as well as a writecap in the write slot if desired, would also work in this case.");
            RequireWritable(request, parent);
            SetChild(parent, name, null, capText, null, replace);
        }
        else
        {
            RequireWritable(request, parent);
            SetChild(parent, name, cap, null, replace);
        }
        var response = GatewayResponse.Streamed(capText);
        response.Kind = GatewayRequestKind.DirectoryChange;
        return response;
    }

    private GatewayResponse Delete(GatewayRequest request, Located located)
    {
        if (located.Node is null) throw TahoeWebException.NoSuchChildHtml(located.Name!);
        if (located.Parent is null) throw TahoeWebException.Traceback(request, TahoeWebException.AssertionError);
        RequireWritable(request, located.Parent);
        var entry = located.Parent.Children[located.Name!];
        located.Parent.Children.Remove(located.Name!);
        Touch(located.Parent);
        var response = GatewayResponse.Streamed(entry.WriteCap ?? entry.ReadCap);
        response.Kind = GatewayRequestKind.DirectoryChange;
        return response;
    }

    /// <summary>Requests to /uri itself: unlinked uploads and directories, and the ?uri= redirect.</summary>
    private GatewayResponse UnlinkedRequest(GatewayRequest request)
    {
        var t = request.T;
        switch (request.Method)
        {
            case "GET" or "HEAD":
                if (request.Arg("uri") is not { } cap) throw TahoeWebException.Text(400, "GET /uri requires uri=");
                var rest = string.Join('&', request.Query.Where(q => q.Key != "uri").Select(q => Uri.EscapeDataString(q.Key) + "=" + Uri.EscapeDataString(q.Value)));
                var location = $"http://{request.Host}/uri/{Uri.EscapeDataString(cap)}" + (rest.Length > 0 ? "?" + rest : "");
                return GatewayResponse.Redirect(302, location, chunked: true);
            case "PUT" when t == "":
                var stored = StoreFile(request, request.Body);
                var uploaded = GatewayResponse.Streamed(stored.ToString());
                uploaded.Kind = GatewayRequestKind.Upload;
                return uploaded;
            case "PUT" or "POST" when t == "mkdir":
                var created = _grid.CreateDirectory(ParseDirectoryFormat(request, "POST /uri?t=mkdir"));
                return MkdirResponse(request, created);
            case "POST" when t == "mkdir-with-children":
                var kids = ParseChildren(request);
                return MkdirResponse(request, _grid.CreateDirectory(ParseDirectoryFormat(request, "POST /uri?t=mkdir-with-children"),
                    kids.ToDictionary(k => k.Name, k => k.Entry, StringComparer.Ordinal)));
            case "POST" when t == "mkdir-immutable":
                return MkdirResponse(request, CreateImmutableDirectory(request));
            case "POST" when t == "upload":
                return FormUpload(request);
            default:
                throw TahoeWebException.Text(400, "/uri accepts only PUT, PUT?t=mkdir, POST?t=upload, and POST?t=mkdir");
        }
    }

    private static GatewayResponse MkdirResponse(GatewayRequest request, TahoeCapability created)
    {
        GatewayResponse response;
        if (IsTrue(request.Arg("redirect_to_result")))
        {
            response = GatewayResponse.Streamed("", 303);
            response.Header("Location", "uri/" + Uri.EscapeDataString(created.ToString()));
        }
        else
        {
            response = GatewayResponse.Streamed(created.ToString());
        }
        response.Kind = GatewayRequestKind.Mkdir;
        return response;
    }

    /// <summary>A browser-style multipart upload: the answer is a results page, not the bare cap.</summary>
    private GatewayResponse FormUpload(GatewayRequest request)
    {
        var data = MultipartFile(request) ?? throw TahoeWebException.Text(400, "t=upload requires a 'file' form field");
        var cap = StoreFile(request, data);
        var response = GatewayResponse.Page("Tahoe-LAFS - File Uploaded",
            $"<h1>Uploading File... done!</h1>\n<ul>\n  <li>URI: <tt><span>{cap}</span></tt></li>\n  <li>Download link: <a href=\"/uri/{Uri.EscapeDataString(cap.ToString())}\">/uri/{cap}</a></li>\n</ul>");
        response.Kind = GatewayRequestKind.Upload;
        return response;
    }

    private static byte[]? MultipartFile(GatewayRequest request)
    {
        var contentType = request.Header("Content-Type") ?? "";
        var marker = contentType.IndexOf("boundary=", StringComparison.OrdinalIgnoreCase);
        if (marker < 0) return null;
        var boundary = Encoding.ASCII.GetBytes("--" + contentType[(marker + 9)..].Trim('"'));
        var body = request.Body.AsSpan();
        while (true)
        {
            var start = body.IndexOf(boundary);
            if (start < 0) return null;
            body = body[(start + boundary.Length)..];
            var headersEnd = body.IndexOf("\r\n\r\n"u8);
            if (headersEnd < 0) return null;
            var headers = Encoding.UTF8.GetString(body[..headersEnd]);
            var content = body[(headersEnd + 4)..];
            var end = content.IndexOf([.. "\r\n"u8, .. boundary]);
            if (end < 0) return null;
            if (headers.Contains("name=\"file\"", StringComparison.Ordinal)) return content[..end].ToArray();
            body = content[end..];
        }
    }
}
