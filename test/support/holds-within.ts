/** Polls `condition` every millisecond; false when it still does not hold after `timeoutMs` (unit tests). */
export async function holdsWithin(condition: () => boolean, timeoutMs = 1000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return true;
}
