using System.Runtime.CompilerServices;

// The layout checks in TruckeeFs.Tests read the raw stat buffer and the renameat2 fallback path,
// which are not part of the kit's public surface.
[assembly: InternalsVisibleTo("TruckeeFs.Tests")]
