namespace TruckeeFs.Coordination;

/// <summary>
/// The server side of semaphores, as a coordinator's backend provides it: every operation is
/// atomic and checks the owner token, so an owner whose lease expired can never extend or free
/// the semaphore another owner has taken since.
/// Errors: <see cref="CoordinatorException"/> when the backend is unreachable.
/// </summary>
internal interface ISemaphoreStore
{
    /// <summary>Takes <paramref name="name"/> for <paramref name="token"/> if nobody holds it; returns whether it did.</summary>
    ValueTask<bool> TryTakeAsync(string name, string token, TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>Resets the TTL of <paramref name="name"/> if <paramref name="token"/> holds it; returns whether it did.</summary>
    ValueTask<bool> ExtendAsync(string name, string token, TimeSpan ttl);

    /// <summary>Frees <paramref name="name"/> if <paramref name="token"/> holds it; returns whether it did.</summary>
    ValueTask<bool> ReleaseAsync(string name, string token);
}
