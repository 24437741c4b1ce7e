/** Nearest-rank percentile of values sorted ascending; `fraction` in (0, 1]. */
export function percentile(sortedAscending: ArrayLike<number>, fraction: number): number {
  if (sortedAscending.length === 0) throw new Error('percentile of no samples');
  const rank = Math.ceil(fraction * sortedAscending.length);
  return sortedAscending[Math.min(Math.max(rank, 1), sortedAscending.length) - 1]!;
}
