/**
 * Wait for every promise, then fulfil with all values or reject with the first failure (in
 * input order). Unlike Promise.all, nothing the caller started is still running when it
 * settles: a caller that answers "done" or moves on after a failure never races its own work.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const values: T[] = new Array(results.length);
  for (let i = 0; i < results.length; i++) {
    const r = results[i] as PromiseSettledResult<T>;
    if (r.status === 'rejected') throw r.reason;
    values[i] = r.value;
  }
  return values;
}
