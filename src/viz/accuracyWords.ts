/**
 * Why a sweep's pair accuracy column is at each loss's best threshold, in words that fit the
 * losses present (no Node imports: `serve`'s page says it too). The batch losses (L2-normalised
 * embeddings) are named only where the sweep has some: without them the column is simply the same
 * convention for every loss.
 */
export function bestThresholdWords(batchLabels: readonly string[]): string {
  const alike = 'for every loss alike';
  if (batchLabels.length === 0) return alike;
  const names = batchLabels.length === 1 ? batchLabels[0]! : `${batchLabels.slice(0, -1).join(', ')} and ${batchLabels[batchLabels.length - 1]!}`;
  return batchLabels.length === 1
    ? `${alike}; ${names} sets no absolute distance scale, so a fixed threshold means nothing for it`
    : `${alike}; ${names} set no absolute distance scale, so a fixed threshold means nothing for them`;
}
